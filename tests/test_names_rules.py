"""The safe file name rule of db/mailin/names.py, each part asserted so that a slip fails it."""

import pytest

from db.mailin.names import safe_name


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("Xmas offer.pdfX", "Xmas offer.pdfX"),  # only spaces and dots go from the ends
        ("NULX.dat", "NULX.dat"),  # a longer word that starts like a device is no device
        ("con\u00a0.txt", "con\u00a0.txt"),  # Windows trims spaces, not other white space
        ("dir/sub\\..\\invoice.pdf", "invoice.pdf"),  # only the last part of a path is kept
    ],
)
def test_a_name_is_changed_only_where_the_rule_says(display, expected):
    assert expected == safe_name(display, 3)


def test_an_empty_name_is_attachment_with_its_position_when_there_is_one():
    assert ("attachment", "attachment-3") == (safe_name(" .. "), safe_name("", 3))
