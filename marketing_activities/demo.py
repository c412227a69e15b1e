"""A realistic demo: the tree, SMS messages, campaigns with flows, Vibes lists,
about a thousand people (some sharing a number, some blocklisted or
suspended) and their subscriptions. Running it again adds nothing twice."""

import random
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from smscampaigns.models import Lead
from vibes.demo import DEMO_LISTS
from vibes.models import AcquisitionCampaign, Subscription, VibesList

from .models import DemoLogin, FlowStep, Folder, Program, SmartCampaign, SmsMessage

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"

FIRST_NAMES = (
    "Anna Ben Carla David Emma Felix Greta Hugo Ida Jonas Klara Lars Mia Noah Olivia Paul "
    "Quinn Rosa Sven Tess Ulf Vera Wim Xenia Yusuf Zoe Astrid Bruno Chiara Dirk Elin Fabio "
    "Giulia Henrik Ingrid Jan Kim Luca Marie Nils"
).split()
LAST_NAMES = (
    "Andersson Bianchi Dubois Eriksson Fischer Garcia Hansen Jansen Keller Lindqvist Martin "
    "Novak Olsen Peeters Rossi Schmidt Smith Vos Weber Young"
).split()
AREA_CODES = ("212", "310", "415", "312", "617", "206", "512", "303", "404", "305")
SOURCES = ("Web form", "Trade show", "In-store", "Referral", "Partner")

MESSAGES = {
    "Black Friday SMS": [
        (
            "Black Friday teaser",
            'Hi {{lead.first_name|default:"there"}}! Black Friday starts Friday 6am: '
            "30% off everything in store and online. Reply STOP to opt out.",
        ),
        (
            "Black Friday last call",
            "Last call: Black Friday deals end at midnight. "
            "Show this text in store for an extra 10%. Reply STOP to opt out.",
        ),
    ],
    "SMS Newsletter 2026": [
        (
            "November newsletter",
            "News from us: the winter collection is here. "
            "See it first: https://example.com/w Reply STOP to opt out.",
        ),
    ],
    "Store Openings": [
        (
            "Stockholm opening",
            "Hej {{lead.first_name}}! Vår nya butik på Drottninggatan öppnar lördag kl 10 – välkommen! "
            "Svara STOP för att avsluta.",
        ),
    ],
}

CAMPAIGNS = [
    {
        "program": "Black Friday SMS",
        "name": "Send Black Friday teaser",
        "description": "Newsletter subscribers in the US get the teaser.",
        "rules": [{"field": "country", "op": "is", "value": "US"}],
        "logic": "all",
        "steps": [("send_sms", "Black Friday teaser", "101", None)],
    },
    {
        "program": "Black Friday SMS",
        "name": "VIP last call",
        "description": "High-scoring people on the VIP list.",
        "rules": [
            {"field": "lead_score", "op": "greater", "value": 50},
            {"field": "vibes_list", "op": "is", "value": "102", "status": "subscribed"},
        ],
        "logic": "1 and 2",
        "steps": [("send_sms", "Black Friday last call", "102", None)],
    },
    {
        "program": "SMS Newsletter 2026",
        "name": "Newsletter opt-in drive",
        "description": "Invite web leads to the SMS newsletter; they confirm by replying Y.",
        "rules": [
            {"field": "lead_source", "op": "is", "value": "Web form"},
            {"field": "vibes_list", "op": "is not", "value": "101", "status": "any"},
        ],
        "logic": "1 and 2",
        "steps": [("subscribe_vibes_list", None, "101", "AC-NEWS-WEB")],
    },
    {
        "program": "SMS Newsletter 2026",
        "name": "Send November newsletter",
        "description": "",
        "rules": [{"field": "mobile_phone", "op": "is empty"}],
        "logic": "not 1",
        "steps": [("send_sms", "November newsletter", "101", None)],
    },
    {
        "program": "Store Openings",
        "name": "Stockholm opening",
        "description": "Swedish people: join the newsletter, and subscribers get the invitation.",
        "rules": [{"field": "country", "op": "in", "value": ["SE", "Sweden"]}],
        "logic": "all",
        "steps": [
            ("subscribe_vibes_list", None, "101", "AC-NEWS-STORE"),
            ("send_sms", "Stockholm opening", "101", None),
        ],
    },
    {
        "program": "Store Openings",
        "name": "Unsubscribe low scorers from VIP",
        "description": "",
        "rules": [{"field": "lead_score", "op": "less", "value": 10}],
        "logic": "all",
        "steps": [("unsubscribe_vibes_list", None, "102", None)],
    },
]

TREE = {
    "Active Marketing Programs": {
        "2026 Holiday": ["Black Friday SMS"],
        "Always On": ["SMS Newsletter 2026"],
    },
    "Retail": {"Store Events": ["Store Openings"]},
}


@dataclass
class DemoReport:
    leads_created: int = 0
    user_created: bool = False


def _demo_people(count: int):
    """The same people every time (fixed seed), so a second run finds them all."""
    rng = random.Random(20261122)
    numbers: list[str] = []
    for index in range(count):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        country = rng.choices(["US", "SE", "DE"], weights=[85, 10, 5])[0]
        roll = rng.random()
        if roll < 0.05:
            phone = ""
        elif roll < 0.12 and numbers:
            phone = rng.choice(numbers)  # a family or shared work phone
        elif country == "SE":
            phone = f"+4670{rng.randrange(1000000, 9999999)}"
        elif country == "DE":
            phone = f"+49151{rng.randrange(10000000, 99999999)}"
        else:
            # 555-01XX numbers are reserved for fiction; one per person.
            area = AREA_CODES[(index // 100) % len(AREA_CODES)]
            phone = f"+1{area}555{100 + index % 100:04d}"
            # Written the way people type it; stored in E.164 all the same.
            if rng.random() < 0.3:
                phone = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
        if phone and phone not in numbers:
            numbers.append(phone)
        yield (
            {
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}.{index}@example.com".lower(),
                "mobile_phone": phone,
                "country": country,
                "city": {"US": "New York", "SE": "Stockholm", "DE": "Berlin"}[country],
                "lead_source": rng.choice(SOURCES),
                "lead_score": rng.randrange(0, 100),
                "blocklisted": rng.random() < 0.02,
                "marketing_suspended": rng.random() < 0.01,
            },
            rng.random(),
            rng.random(),
        )


@transaction.atomic
def seed_demo(*, people: int = 1000) -> DemoReport:
    report = DemoReport()
    lists = {}
    for demo_list in DEMO_LISTS:
        vibes_list, _ = VibesList.objects.update_or_create(
            vibes_id=demo_list["id"], defaults={"name": demo_list["name"], "gone_at": None}
        )
        lists[demo_list["id"]] = vibes_list
        for acquisition in demo_list["acquisition_campaigns"]:
            AcquisitionCampaign.objects.update_or_create(
                vibes_id=acquisition["acquisition_id"],
                defaults={
                    "name": acquisition["description"],
                    "vibes_list": vibes_list,
                    "status": "active",
                    "keywords": ", ".join(acquisition["keywords"]),
                    "gone_at": None,
                },
            )

    programs = {}
    for top_name, children in TREE.items():
        top, _ = Folder.objects.get_or_create(name=top_name, parent=None)
        for child_name, program_names in children.items():
            child, _ = Folder.objects.get_or_create(name=child_name, parent=top)
            for program_name in program_names:
                programs[program_name], _ = Program.objects.get_or_create(name=program_name, folder=child)

    messages = {}
    for program_name, items in MESSAGES.items():
        for name, text in items:
            messages[name], _ = SmsMessage.objects.get_or_create(
                program=programs[program_name], name=name, defaults={"text": text}
            )

    for spec in CAMPAIGNS:
        campaign, created = SmartCampaign.objects.get_or_create(
            program=programs[spec["program"]],
            name=spec["name"],
            defaults={"description": spec["description"]},
        )
        if not created:
            continue
        rules = [
            {**rule, "value": lists[rule["value"]].pk} if rule["field"] == "vibes_list" else rule
            for rule in spec["rules"]
        ]
        campaign.smart_list.definition = {"logic": spec["logic"], "rules": rules}
        campaign.smart_list.save()
        for position, (action, message, list_id, acquisition_id) in enumerate(spec["steps"]):
            FlowStep.objects.create(
                campaign=campaign,
                position=position,
                action=action,
                sms_message=messages.get(message),
                vibes_list=lists[list_id],
                acquisition_campaign=(
                    AcquisitionCampaign.objects.get(vibes_id=acquisition_id) if acquisition_id else None
                ),
            )

    existing = set(Lead.objects.filter(email__endswith="@example.com").values_list("email", flat=True))
    new_people = []
    for fields, roll_news, roll_vip in _demo_people(people):
        if fields["email"] in existing:
            continue
        lead = Lead(**fields)
        lead.save()
        new_people.append(lead)
        now = timezone.now()
        if lead.mobile_phone:
            if roll_news < 0.45:
                Subscription.objects.create(
                    lead=lead, vibes_list=lists["101"], status="subscribed", opt_in_date=now
                )
            elif roll_news < 0.52:
                Subscription.objects.create(
                    lead=lead, vibes_list=lists["101"], status="pending", pending_since=now
                )
            elif roll_news < 0.57:
                Subscription.objects.create(
                    lead=lead,
                    vibes_list=lists["101"],
                    status="unsubscribed",
                    opt_out_date=now,
                    opt_out_reason="user_opt_out",
                )
            if roll_vip < 0.2:
                Subscription.objects.create(
                    lead=lead, vibes_list=lists["102"], status="subscribed", opt_in_date=now
                )
    report.leads_created = len(new_people)

    User = get_user_model()
    user = User.objects.filter(username=DEMO_USERNAME).first()
    if user is None:
        user = User.objects.create_superuser(DEMO_USERNAME, "demo@example.com", DEMO_PASSWORD)
        report.user_created = True
    _remember_demo_login(user, password_is_demo=report.user_created)
    return report


def _remember_demo_login(user, *, password_is_demo: bool) -> None:
    """Mark the demo login for the login page while its password is the demo one.

    Checked here, once per seed_demo (a hash), so that the login page never
    hashes: a marker left from an earlier seed is renewed, or dropped when
    the password was changed since.
    """
    if password_is_demo or user.check_password(DEMO_PASSWORD):
        DemoLogin.objects.update_or_create(user=user, defaults={"password_hash": user.password})
    else:
        DemoLogin.objects.filter(user=user).delete()


def demo_login() -> dict | None:
    """The demo user name and password for the login page, or None.

    Shown only in development (DEBUG on: never in production), and only while
    the demo user is active and still has the password seed_demo gave it.
    One query, no hashing.
    """
    if not settings.DEBUG:
        return None
    marker = (
        DemoLogin.objects.filter(user__is_active=True, user__password=F("password_hash"))
        .select_related("user")
        .first()
    )
    if marker is None:
        return None
    return {"username": marker.user.get_username(), "password": DEMO_PASSWORD}
