"""Messages of Django itself that its own catalogues leave untranslated in some
of the interface's languages.

Django 6.1 added both; its German and Italian catalogues have neither yet, and
its Swedish and Dutch ones lack the first. The project's catalogues
(LOCALE_PATHS) are read before Django's, so translating them here fills the
gap. Nothing imports this module: `makemessages` reads it.
"""

from django.utils.translation import gettext_noop

DJANGO_MESSAGES = (
    # The empty choice of every select (models.fields.BLANK_CHOICE_LABEL).
    gettext_noop("- Select an option -"),
    # The button that runs the chosen admin action: a verb.
    gettext_noop("Run"),
)
