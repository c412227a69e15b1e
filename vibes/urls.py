app_name = "vibes"
urlpatterns: list = []
