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


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        # too many characters alone, too many bytes alone: either limit shortens
        ("X" * 150 + ".pdf", "X" * 116 + ".pdf"),
        ("é" * 110 + ".pdf", "é" * 98 + ".pdf"),
        # exactly at a limit: kept whole, the space before the extension too
        ("a" * 115 + " .pdf", "a" * 115 + " .pdf"),
        ("é" * 97 + "  .pdf", "é" * 97 + "  .pdf"),
        # the extension is what follows the last dot, kept up to 16 characters with its dot
        ("v1.2 " + "x" * 150 + ".pdf", "v1.2 " + "x" * 111 + ".pdf"),
        ("x" * 150 + ".abcdefghijklmno", "x" * 104 + ".abcdefghijklmno"),
        ("v1.2 " + "x" * 150, "v1.2 " + "x" * 115),
        ("x" * 300, "x" * 120),
        # a character the byte limit would split is dropped whole
        ("a" + "é" * 150 + ".pdf", "a" + "é" * 97 + ".pdf"),
        # where the cut falls only spaces and dots go, not other white space
        ("x" * 110 + "\u00a0" * 20 + ".pdf", "x" * 110 + "\u00a0" * 6 + ".pdf"),
    ],
)
def test_a_long_name_is_cut_to_its_limits_and_keeps_its_extension(display, expected):
    assert expected == safe_name(display, 3)
