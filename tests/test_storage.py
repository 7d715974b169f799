"""Opening the study database: URLs, password masking, retries of a lost connection."""

from __future__ import annotations

import logging

import pytest

from autostudent import storage

URL = "postgresql://postgres:s3cret-XYZ@127.0.0.1:5432/test"


def test_urls_shown_and_stored_without_the_password():
    assert storage.safe_url(URL) == "postgresql://postgres:***@127.0.0.1:5432/test"
    assert storage.public_url(URL) == "postgresql://postgres@127.0.0.1:5432/test"
    # a password in the query string, percent-encoded: gone as well
    odd = "postgresql+psycopg://u:p%40ss-word@h/db?password=q-secret&sslmode=require"
    assert storage.public_url(odd) == "postgresql+psycopg://u@h/db?sslmode=require"
    assert "p@ss" not in storage.safe_url(odd) and "q-secret" not in storage.safe_url(odd)
    for plain in ("sqlite:///a/b.db", "sqlite:////abs/b.db", "postgresql://u@h:1/d"):
        assert storage.public_url(plain) == storage.safe_url(plain) == plain


def test_redact_masks_known_passwords_in_any_text(caplog):
    storage.parse("postgresql://u:p%40ss-word@h/db")
    text = "failed: p@ss-word / p%40ss-word / mysql://x:never-parsed@h/d"
    assert storage.redact(text) == "failed: *** / *** / mysql://x:***@h/d"
    with caplog.at_level(logging.INFO):
        logging.getLogger("autostudent.test").info("connecting with %s", "p@ss-word")
    assert "p@ss-word" not in caplog.text and "connecting with ***" in caplog.text


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("just-a-path.db", "is not a database URL"),
        ("nosuchdialect://u:s3cret-XYZ@h/d", "cannot open nosuchdialect://u:***@h/d"),
        ("postgresql://postgres:s3cret-XYZ@127.0.0.1:1/test", "postgres:***@127.0.0.1:1/test"),
    ],
)
def test_bad_or_unreachable_urls_are_one_line_without_the_password(url, part, user_error):
    message = user_error(lambda: storage.open_storage(url), "--storage", part)
    assert "s3cret" not in message
