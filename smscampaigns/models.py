"""The people database: leads and the smart lists that pick them."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .phones import normalize_phone

# Lets smart list rules compare text case-insensitively with `field__lower__in`.
models.CharField.register_lookup(Lower)


class LeadQuerySet(models.QuerySet):
    def with_phone(self):
        return self.exclude(mobile_phone="")

    def sharing_number_with(self, lead):
        if not lead.mobile_phone:
            return self.none()
        return self.filter(mobile_phone=lead.mobile_phone).exclude(pk=lead.pk)


class Lead(models.Model):
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    email = models.EmailField(_("email address"), blank=True)
    mobile_phone = models.CharField(
        _("mobile phone"),
        max_length=16,
        blank=True,
        db_index=True,
        help_text=_("Stored in E.164 form, e.g. +15551234567."),
    )
    country = models.CharField(_("country"), max_length=100, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    state = models.CharField(_("state"), max_length=100, blank=True)
    lead_source = models.CharField(_("lead source"), max_length=100, blank=True)
    lead_score = models.IntegerField(_("lead score"), default=0)
    blocklisted = models.BooleanField(
        _("blocklisted"), default=False, help_text=_("Never texted, never subscribed.")
    )
    marketing_suspended = models.BooleanField(
        _("marketing suspended"), default=False, help_text=_("Never texted, never subscribed.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = LeadQuerySet.as_manager()

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["pk"]
        constraints = [
            # Re-importing a file updates people by email, so an email names one lead.
            models.UniqueConstraint(
                fields=["email"], condition=~models.Q(email=""), name="lead_email_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(mobile_phone="") | models.Q(mobile_phone__startswith="+"),
                name="lead_mobile_phone_e164",
                violation_error_message=_("The mobile phone must be stored in E.164 form."),
            ),
        ]

    def __str__(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.mobile_phone or _("Lead %(id)s") % {"id": self.pk}

    def clean(self):
        self.email = self.email.strip().lower()
        try:
            self.mobile_phone = normalize_phone(self.mobile_phone)
        except ValidationError as error:
            raise ValidationError({"mobile_phone": error.messages}) from None

    def save(self, *args, **kwargs):
        # Every path that stores a lead stores its number in E.164 form, so
        # planning can compare numbers with plain equality.
        self.mobile_phone = normalize_phone(self.mobile_phone)
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}".strip()


def empty_definition():
    return {"logic": "all", "rules": []}


class SmartList(models.Model):
    name = models.CharField(_("name"), max_length=200)
    definition = models.JSONField(
        _("rules and logic"),
        default=empty_definition,
        help_text=_(
            'Filters as JSON: {"logic": "all" | "any" | "1 and (2 or not 3)", '
            '"rules": [{"field": "country", "op": "is", "value": "US"}]}'
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("smart list")
        verbose_name_plural = _("smart lists")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        from .smartlists import parse_definition

        try:
            parse_definition(self.definition)
        except ValidationError as error:
            raise ValidationError({"definition": error.messages}) from None

    def parsed(self):
        from .smartlists import parse_definition

        return parse_definition(self.definition)

    def leads(self):
        """The people this smart list picks, as one query."""
        return Lead.objects.filter(self.parsed().to_q())

    # These two read whatever is stored, even a definition that no longer
    # passes the rules (written before them): pages list it, then show its problems.
    @property
    def rules(self):
        rules = self.definition.get("rules", []) if isinstance(self.definition, dict) else []
        return rules if isinstance(rules, list) else []

    @property
    def logic(self):
        logic = self.definition.get("logic", "all") if isinstance(self.definition, dict) else "all"
        return logic if isinstance(logic, str) else ""
