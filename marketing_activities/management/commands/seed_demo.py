from django.core.management.base import BaseCommand

from marketing_activities.demo import DEMO_PASSWORD, DEMO_USERNAME, seed_demo


class Command(BaseCommand):
    help = "Create the demo: folders, programs, campaigns with flows, Vibes lists, ~1,000 people. Safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument("--people", type=int, default=1000, help="how many demo people (default 1000)")

    def handle(self, *args, people, **options):
        report = seed_demo(people=people)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {report.leads_created} people added."))
        if report.user_created:
            self.stdout.write(f"Demo login: {DEMO_USERNAME} / {DEMO_PASSWORD}")
