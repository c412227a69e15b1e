import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from smscampaigns.models import Activity, Lead, LeadFlagChange, LeadImport, SmartList


class LeadFactory(DjangoModelFactory):
    class Meta:
        model = Lead

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    # 555-01XX numbers are fictional; the area code changes every 100 people.
    mobile_phone = factory.Sequence(lambda n: f"+1{201 + (n // 100) % 700}555{100 + n % 100:04d}")
    country = "US"


class SmartListFactory(DjangoModelFactory):
    class Meta:
        model = SmartList

    name = factory.Sequence(lambda n: f"Smart list {n}")
    definition = factory.LazyFunction(
        lambda: {"logic": "all", "rules": [{"field": "country", "op": "is", "value": "US"}]}
    )


class LeadImportFactory(DjangoModelFactory):
    class Meta:
        model = LeadImport

    file_name = factory.Sequence(lambda n: f"leads-{n}.csv")
    size = 1234
    encoding = "utf-8"
    status = LeadImport.Status.COMPLETED
    rows_read = 10
    leads_created = 8
    rows_refused = 2


class LeadFlagChangeFactory(DjangoModelFactory):
    class Meta:
        model = LeadFlagChange

    lead = factory.SubFactory(LeadFactory)
    flag = LeadFlagChange.Flag.BLOCKLISTED
    old_value = False
    new_value = True
    source = LeadFlagChange.Source.IMPORT
    lead_import = factory.SubFactory(LeadImportFactory)
    line = 2
    note = factory.SelfAttribute("lead_import.file_name")


class ActivityFactory(DjangoModelFactory):
    class Meta:
        model = Activity

    kind = Activity.Kind.SUBSCRIBED_TO_VIBES_LIST
    lead = factory.SubFactory(LeadFactory)
    occurred_at = factory.LazyFunction(timezone.now)
    key = factory.Sequence(lambda n: f"activity-{n}")
    source = "vibes"
    attributes = factory.LazyFunction(lambda: {"list": "101"})
