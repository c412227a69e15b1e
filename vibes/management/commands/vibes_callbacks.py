from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from vibes.conf import get_client
from vibes.exceptions import VibesAuthError, VibesConnectionError, VibesError, VibesTimeout
from vibes.redaction import url_without_password
from vibes.registration import (
    CallbacksNotConfigured,
    callbacks_overview,
    callbacks_register,
    callbacks_test,
)


class Command(BaseCommand):
    help = (
        "This app's callbacks at Vibes. register: register the callbacks URL "
        "(VIBES_DELIVERY_RECEIPT_URL, with the callback credentials) for every event type the app "
        "reads, on the Platform and on Connect; running it again changes nothing. list: what is "
        "registered. test: have Vibes send a test event of each type and say whether it arrived."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="register|list|test")
        register = actions.add_parser(
            "register", help="register the callbacks URL for every event type the app reads"
        )
        register.add_argument(
            "--connect-again",
            action="store_true",
            help="register the Connect callbacks even when recorded as registered (Connect lists none "
            "to check against)",
        )
        actions.add_parser("list", help="list the callbacks registered with Vibes")
        test = actions.add_parser("test", help="have Vibes send test events and wait for them")
        test.add_argument(
            "--deadline",
            type=float,
            default=30.0,
            help="seconds to wait for the test events to arrive (default: 30)",
        )

    def handle(self, *args, action: str, **options):
        client = get_client()
        try:
            if action == "register":
                self._register(client, options["connect_again"])
            elif action == "list":
                self._list(client)
            else:
                self._test(client, options["deadline"])
        except CallbacksNotConfigured as error:
            raise CommandError(str(error)) from None
        except VibesError as error:
            raise CommandError(describe(error, client)) from None

    def _register(self, client, connect_again: bool):
        changes = callbacks_register(client=client, connect_again=connect_again)
        for change in changes:
            self.stdout.write(change.line, self.style.ERROR if change.failed else None)
        failed = sum(change.failed for change in changes)
        if failed:
            raise CommandError(_("Vibes refused %(count)d of the registrations.") % {"count": failed})

    def _list(self, client):
        overview = callbacks_overview(client=client)
        self.stdout.write(_("Callbacks URL: %(url)s") % {"url": overview.shown_url})
        self.stdout.write(_("Event types this app reads:"))
        for row in overview.rows:
            registration = row.registration
            parts = [row.api_name, row.wanted.callback_type, row.state_label]
            if registration is not None:
                parts += [registration.id or "—", registration.shown_url]
                if registration.scope:
                    parts.append(", ".join(f"{k}={v}" for k, v in registration.scope))
            if row.registered_at is not None:
                parts.append(
                    _("registered %(time)s, as recorded here (Connect lists no registrations)")
                    % {"time": row.registered_at.strftime("%Y-%m-%d %H:%M:%S %Z")}
                )
            self.stdout.write("  " + "  ".join(parts))
            for duplicate in row.duplicates:
                self.stdout.write(
                    "  "
                    + "  ".join(
                        [row.api_name, row.wanted.callback_type, _("second registration"), duplicate.id]
                    )
                )
        if overview.others:
            self.stdout.write(_("Other registrations in Vibes (left alone):"))
            for other in overview.others:
                self.stdout.write(
                    "  " + "  ".join(["Platform", other.callback_type, other.id or "—", other.shown_url])
                )

    def _test(self, client, deadline: float):
        if deadline <= 0:
            raise CommandError(_("--deadline must be a number of seconds above 0."))
        results = callbacks_test(client=client, deadline=deadline)
        for result in results:
            self.stdout.write(result.line, self.style.ERROR if result.failed else None)
        failed = sum(result.failed for result in results)
        if failed:
            raise CommandError(
                _("%(failed)d of %(count)d callback tests failed.")
                % {"failed": failed, "count": len(results)}
            )


def describe(error: VibesError, client) -> str:
    """One line for an operator: what went wrong with Vibes, without a stack trace or a password."""
    if isinstance(error, (VibesConnectionError, VibesTimeout)):
        return _(
            "Vibes is unreachable at %(url)s (%(error)s). Is VIBES_PLATFORM_URL right, and is the "
            "simulator running (manage.py vibes_simulator)?"
        ) % {"url": url_without_password(client.platform_url), "error": error}
    if isinstance(error, VibesAuthError):
        return _(
            "Vibes refused the credentials (check VIBES_COMPANY_KEY, VIBES_USERNAME, "
            "VIBES_PASSWORD): %(error)s"
        ) % {"error": error}
    return _("Vibes refused the request: %(error)s") % {"error": error}
