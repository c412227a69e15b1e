"""The demo company's Vibes lists and acquisition campaigns.

`seed_demo` writes them to the database, and `manage.py vibes_simulator`
serves the lists and campaigns of the database, so a fresh install works end
to end without Vibes credentials. The tests' simulator starts with them too.
"""

DEMO_LISTS = [
    {
        "id": "101",
        "name": "SMS Newsletter",
        "acquisition_campaigns": [
            {"acquisition_id": "AC-NEWS-WEB", "description": "Newsletter web sign-up", "keywords": ["NEWS"]},
            {
                "acquisition_id": "AC-NEWS-STORE",
                "description": "Newsletter in-store keyword",
                "keywords": ["JOIN"],
            },
        ],
    },
    {
        "id": "102",
        "name": "VIP Offers",
        "acquisition_campaigns": [
            {"acquisition_id": "AC-VIP", "description": "VIP offers opt-in", "keywords": ["VIP"]},
        ],
    },
]
