"""The login page: Django's, with the demo login while `make run`'s demo data is there."""

from django.contrib.auth import views as auth_views

from ..demo import demo_login


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs):
        # None unless DEBUG is on and the demo password is unchanged (demo.demo_login).
        return {**super().get_context_data(**kwargs), "demo_login": demo_login()}
