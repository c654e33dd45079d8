"""Property tests: whatever bytes arrive are stored, and the daemon never raises because of them."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.core.connect import open_db
from db.mailin.model import Delivery
from db.mailin.store import store_batch
from ingest import daemon
from ingest.demo import demo_messages
from ingest.parse import parse
from tests.conftest import drop

SAMPLES = [raw for _, raw in demo_messages()]


def mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 12)):
        op, at = rng.random(), rng.randrange(len(data) + 1)
        if op < 0.4 and data:
            del data[at : at + rng.randint(1, 40)]
        elif op < 0.8:
            data[at:at] = rng.choice(
                [
                    b"\r\n",
                    b"\n\n",
                    b"=?",
                    b"?=",
                    b"--",
                    b"\x00",
                    b"\xff\xfe",
                    b"Content-Type: multipart/mixed; boundary=",
                    b"charset=",
                    b"<",
                    b">",
                    b":",
                    bytes([rng.randrange(256)]),
                ]
            )
        elif data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
    return bytes(data)


messages = st.one_of(
    st.binary(max_size=4000),
    st.builds(mutate, st.sampled_from(SAMPLES), st.randoms(use_true_random=False)),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=messages)
def test_any_bytes_are_stored_exactly_once(tmp_path_factory, raw):
    db = open_db(tmp_path_factory.mktemp("p") / "d.db")
    msg = parse(raw)
    for field in ("subject", "from_addr", "from_name", "body_text", "body_html", "headers"):
        value = getattr(msg, field)
        assert isinstance(value, str)
        value.encode("utf-8")  # storable: no lone surrogates
    (stored,) = store_batch(db, [(msg, Delivery("p", "k", ("general",)))])
    (again,) = store_batch(db, [(parse(raw), Delivery("p", "k2", ("general",)))])
    assert (stored.message_id, False) == (again.message_id, again.new)
    kept = db.execute("SELECT raw FROM raw_message WHERE message_id = ?", [stored.message_id])
    assert raw == kept.fetchone()[0]
    db.close()


def test_the_daemon_stores_a_folder_of_broken_mail_without_stopping(tmp_path, cfg):
    rng = random.Random(1234)
    corpus = {mutate(rng.choice(SAMPLES), rng) for _ in range(300)}
    corpus |= {bytes(rng.randrange(256) for _ in range(rng.randrange(1, 500))) for _ in range(50)}
    for raw in corpus:
        drop(tmp_path, "general", raw)
    daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    assert len(corpus) == db.execute("SELECT count(*) FROM message").fetchone()[0]
    assert [] == list((tmp_path / "spool" / "general" / "new").iterdir())
