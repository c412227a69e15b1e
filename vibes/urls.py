from django.urls import path

from . import views

app_name = "vibes"
urlpatterns = [
    path("callbacks/", views.callbacks, name="callbacks"),
]
