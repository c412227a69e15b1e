from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import set_language

from marketing_activities.views.links import short_link
from marketing_activities.views.login import LoginView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="marketing_activities:index", permanent=False)),
    # Django's login page, showing the demo login in development (seed_demo).
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The login page has the language switcher too.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("admin/", admin.site.urls),
    path("vibes/", include("vibes.urls")),
    path("marketing-activities/", include("marketing_activities.urls")),
    # Tracked links in SMS: short, so the path is one letter.
    path("l/<path:code>", short_link, name="short_link"),
]
