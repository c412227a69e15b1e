import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from marketing_activities.models import Folder
from tests.marketing_activities.factories import FolderFactory, ProgramFactory

pytestmark = pytest.mark.django_db


def test_a_folder_cannot_move_into_its_own_subfolder():
    top = FolderFactory()
    child = FolderFactory(parent=top)
    top.parent = child
    with pytest.raises(ValidationError) as error:
        top.full_clean()
    assert "cannot be moved into itself" in error.value.message_dict["parent"][0]


def test_folder_names_are_unique_within_a_parent_and_at_the_top():
    top = FolderFactory(name="Holiday")
    with pytest.raises(ValidationError):
        Folder(name="Holiday").full_clean()
    FolderFactory(parent=top, name="Q4")
    Folder(parent=FolderFactory(), name="Q4").full_clean()  # fine elsewhere
    with pytest.raises(IntegrityError):
        Folder.objects.create(parent=top, name="Q4")


def test_ancestors_are_outermost_first():
    a = FolderFactory()
    b = FolderFactory(parent=a)
    c = FolderFactory(parent=b)
    assert c.ancestors() == [a, b]


def test_a_folder_holding_programs_cannot_be_deleted():
    program = ProgramFactory()
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        program.folder.delete()
