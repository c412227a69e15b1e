from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from marketing_activities.campaign_requests import campaign_request
from marketing_activities.models import SmartCampaign


class Command(BaseCommand):
    help = (
        "Request a trigger campaign for people: its trigger “Campaign is Requested” runs its flow for "
        "each of them (when it is active and they pass its smart list's rules)."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", type=int, help="the id of the campaign to request")
        parser.add_argument("leads", type=int, nargs="+", help="the ids of the people to request it for")

    def handle(self, *args, **options):
        campaign = SmartCampaign.objects.filter(pk=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No smart campaign has the id {options['campaign']}.")
        try:
            count = campaign_request(campaign=campaign, lead_ids=options["leads"])
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"“{campaign}” requested for {count} people."))
