"""SQLite storage of raters and answers: every answer committed as it is submitted.

One connection per operation (safe across the web server's threads), WAL journal so
readers never block the writer, and a primary key (rater, image) so a resubmitted answer
replaces the earlier one instead of adding a second.
"""

from __future__ import annotations

import math
import secrets
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from fetal_dcgan.report.ratings import RATER_ROLES

#: The two answers a rater gives an image: real or synthetic, and a quality rating on this scale.
CHOICES = ("real", "synthetic")
RATING_SCALE = (1, 5)
#: The largest request a rater's browser sends (a form of one rating or of the rater's details), in bytes.
MAX_REQUEST_BYTES = 16 * 1024


def _listed(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


@dataclass(frozen=True)
class RaterField:
    """Something a rater says about themself on the start page: a choice among ``choices`` or
    a number within ``bounds``. Its column and CHECK, the form's input, the check of what was
    entered and its export column all follow from this declaration."""

    name: str
    label: str
    choices: tuple[str, ...] = ()
    bounds: tuple[float, float] = (0.0, 0.0)
    step: float = 1.0

    def column(self) -> str:
        if self.choices:
            return f"{self.name} TEXT NOT NULL CHECK ({self.name} IN ({_listed(self.choices)}))"
        return f"{self.name} REAL NOT NULL CHECK ({self.name} BETWEEN {self.bounds[0]:g} AND {self.bounds[1]:g})"

    def parse(self, text: str) -> str | float:
        """The value entered, or ValueError with a message that names the field and what it takes."""
        if self.choices:
            if text not in self.choices:
                raise ValueError(f"{self.label}: choose one of {', '.join(self.choices)}.")
            return text
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not self.bounds[0] <= value <= self.bounds[1]:  # NaN fails too
            raise ValueError(f"{self.label}: a number from {self.bounds[0]:g} to {self.bounds[1]:g}.")
        return value


#: What every rater is asked before the first image, in the order of the form and the export.
RATER_FIELDS = (
    RaterField("role", "Role", choices=RATER_ROLES),
    RaterField("years", "Years of experience with fetal ultrasound", bounds=(0.0, 80.0), step=0.5),
)
_RATER_COLUMNS = ", ".join(f"r.{f.name}" for f in RATER_FIELDS)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS raters (
    rater TEXT PRIMARY KEY,
    {", ".join(f.column() for f in RATER_FIELDS)},
    started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    rater TEXT NOT NULL REFERENCES raters(rater),
    image TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ({_listed(CHOICES)})),
    rating INTEGER NOT NULL CHECK (rating BETWEEN {RATING_SCALE[0]} AND {RATING_SCALE[1]}),
    answered REAL NOT NULL,
    seconds REAL,
    PRIMARY KEY (rater, image)
);
"""


#: Invitation links: a code registers the one rater who first uses it.
INVITATIONS = """
CREATE TABLE IF NOT EXISTS invitations (
    code TEXT PRIMARY KEY,
    rater TEXT,
    created REAL NOT NULL,
    used REAL
)"""


def _insert_rater(conn, rater: str, fields: dict) -> None:
    names = ", ".join(f.name for f in RATER_FIELDS)
    values = [fields[f.name] for f in RATER_FIELDS]
    conn.execute(
        f"INSERT INTO raters (rater, {names}, started) VALUES (?, {', '.join('?' * len(values))}, ?) "
        "ON CONFLICT (rater) DO NOTHING",  # a bad value still fails its CHECK
        (rater, *values, time.time()),
    )


class Storage:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def connect(self):
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            with conn:  # one transaction, committed on success
                yield conn

    def create(self) -> None:
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)

    def add_rater(self, rater: str, fields: dict) -> None:
        """Register a rater with a value for each of ``RATER_FIELDS``; a returning rater keeps
        their first registration."""
        with self.connect() as conn:
            _insert_rater(conn, rater, fields)

    def invite(self, n: int) -> list[str]:
        """``n`` new invitation codes, each good for one rater."""
        codes = [secrets.token_urlsafe(16) for _ in range(n)]
        with self.connect() as conn:
            conn.execute(INVITATIONS)
            conn.executemany("INSERT INTO invitations (code, created) VALUES (?, ?)", [(c, time.time()) for c in codes])
        return codes

    def claim(self, code: str, rater: str, fields: dict) -> str:
        """Register ``rater`` through an invitation in one transaction: '' when done, else why
        not (and nothing is stored). The rater who used a code may come back through it."""
        with self.connect() as conn:
            conn.execute(INVITATIONS)
            row = conn.execute("SELECT rater FROM invitations WHERE code = ?", (code,)).fetchone()
            if row is None:
                return "This invitation link is not one of this study's: open the link the study's admin sent you."
            if row["rater"] not in (None, rater):
                return "This invitation link has already been used by another rater: ask the study's admin for yours."
            conn.execute("UPDATE invitations SET rater = ?, used = ? WHERE code = ?", (rater, time.time(), code))
            _insert_rater(conn, rater, fields)
        return ""

    def rater(self, rater: str) -> dict | None:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM raters WHERE rater = ?", (rater,)).fetchone()
        return dict(row) if row else None

    def save_answer(self, rater: str, image: str, choice: str, rating: int, seconds: float | None) -> None:
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rater, image) DO UPDATE SET "
                "choice = excluded.choice, rating = excluded.rating, answered = excluded.answered, "
                "seconds = excluded.seconds",
                (rater, image, choice, rating, time.time(), seconds),
            )

    def answered(self, rater: str) -> set[str]:
        with self.connect() as conn:
            return {r["image"] for r in conn.execute("SELECT image FROM answers WHERE rater = ?", (rater,))}

    def answers(self) -> list[dict]:
        with self.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    f"SELECT a.rater, {_RATER_COLUMNS}, a.image, a.choice, a.rating, a.answered, a.seconds "
                    "FROM answers a JOIN raters r USING (rater) ORDER BY a.rater, a.answered"
                )
            ]

    def progress(self) -> list[dict]:
        with self.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    f"SELECT r.rater, {_RATER_COLUMNS}, COUNT(a.image) AS answered FROM raters r "
                    "LEFT JOIN answers a USING (rater) GROUP BY r.rater ORDER BY r.started"
                )
            ]
