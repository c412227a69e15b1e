"""The dashboards' choices: the date range, the figure over time, the messages compared."""

import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ..models import SmsMessage

PRESETS = {"2d": 2, "7d": 7, "30d": 30, "90d": 90, "365d": 365}
DEFAULT_RANGE = "30d"
# A custom range of more than two years would draw a chart of thousands of days.
MAX_DAYS = 731
OVER_TIME_FIGURES = (
    ("sent", _("Sent")),
    ("delivered", _("Delivered")),
    ("failed", _("Failed")),
    ("replied", _("Replied")),
    ("clicked", _("Clicked")),
    ("unsubscribed", _("Unsubscribed")),
)


@dataclass(frozen=True)
class Period:
    """[start, end) in time, and the days a person chose (for the form and the links)."""

    start: datetime.datetime
    end: datetime.datetime
    first_day: datetime.date
    last_day: datetime.date


def _midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), tzinfo=ZoneInfo(settings.TIME_ZONE))


def preset_period(days: int, now=None) -> Period:
    """The last `days` days up to now: for 2 days, the 48 hours up to the end of this hour
    (hourly), otherwise whole days of the installation's time zone, today the last."""
    now = timezone.localtime(now or timezone.now(), ZoneInfo(settings.TIME_ZONE))
    if days <= 2:
        end = now.replace(minute=0, second=0, microsecond=0) + datetime.timedelta(hours=1)
        start = end - datetime.timedelta(days=days)
        return Period(start, end, start.date(), (end - datetime.timedelta(microseconds=1)).date())
    last = now.date()
    first = last - datetime.timedelta(days=days - 1)
    return Period(_midnight(first), _midnight(last + datetime.timedelta(days=1)), first, last)


class DashboardForm(forms.Form):
    range = forms.ChoiceField(
        label=_("Date range"),
        required=False,
        choices=[
            ("2d", _("Last 2 days (hourly)")),
            ("7d", _("Last 7 days")),
            ("30d", _("Last 30 days")),
            ("90d", _("Last 90 days")),
            ("365d", _("Last 12 months")),
            ("custom", _("Custom range")),
        ],
    )
    start = forms.DateField(
        label=pgettext_lazy("a date range", "From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    end = forms.DateField(
        label=pgettext_lazy("a date range", "To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    figure = forms.ChoiceField(label=_("Figure"), required=False, choices=OVER_TIME_FIGURES)
    first = forms.IntegerField(label=_("Compare"), required=False, min_value=1)
    second = forms.IntegerField(
        label=pgettext_lazy("compare one SMS message with another", "with"), required=False, min_value=1
    )

    def _message_id(self, name):
        pk = self.cleaned_data.get(name)
        if pk is not None and not SmsMessage.objects.filter(pk=pk).exists():
            raise forms.ValidationError(_("That SMS message does not exist (any more)."))
        return pk

    def clean_first(self):
        return self._message_id("first")

    def clean_second(self):
        return self._message_id("second")

    def clean(self):
        data = super().clean()
        if data.get("range") == "custom" and "start" not in self.errors and "end" not in self.errors:
            start, end = data.get("start"), data.get("end")
            if start is None:
                self.add_error("start", _("A custom range needs a From date."))
            if end is None:
                self.add_error("end", _("A custom range needs a To date."))
            if start and end and start > end:
                self.add_error("end", _("The To date is before the From date."))
            elif start and end and (end - start).days + 1 > MAX_DAYS:
                self.add_error("end", _("A range may span at most %(days)s days.") % {"days": MAX_DAYS})
        return data

    def valid(self, name: str, default):
        """The field's value when it is valid, else `default`: a mistake costs only its own field
        (a field with an error is not in cleaned_data)."""
        self.errors  # noqa: B018 (cleans the form once)
        return self.cleaned_data.get(name) or default

    def period(self, now=None) -> Period:
        """The range chosen, or the last 30 days while the choice has a mistake."""
        chosen = self.valid("range", DEFAULT_RANGE)
        if chosen == "custom":
            first, last = self.valid("start", None), self.valid("end", None)
            if first is None or last is None or "end" in self.errors:
                return preset_period(PRESETS[DEFAULT_RANGE], now)
            return Period(_midnight(first), _midnight(last + datetime.timedelta(days=1)), first, last)
        return preset_period(PRESETS[chosen], now)

    @property
    def range_choice(self) -> str:
        return self.valid("range", DEFAULT_RANGE)

    @property
    def figure_choice(self) -> str:
        return self.valid("figure", "sent")

    def period_query(self) -> dict:
        """The range as query parameters, for the links to the people behind a figure."""
        chosen = self.valid("range", DEFAULT_RANGE)
        if chosen == "custom" and self.valid("start", None) and self.valid("end", None):
            return {"range": chosen, "start": self.cleaned_data["start"], "end": self.cleaned_data["end"]}
        return {"range": chosen if chosen != "custom" else DEFAULT_RANGE}
