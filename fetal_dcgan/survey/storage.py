"""SQLite storage of raters and answers: every answer committed as it is submitted.

One connection per operation (safe across the web server's threads), WAL journal so
readers never block the writer, and a primary key (rater, image) so a resubmitted answer
replaces the earlier one instead of adding a second.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path

from fetal_dcgan.report.ratings import RATER_ROLES

ROLES = RATER_ROLES
#: The two answers a rater gives an image: real or synthetic, and a quality rating on this scale.
CHOICES = ("real", "synthetic")
RATING_SCALE = (1, 5)


def _listed(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS raters (
    rater TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ({_listed(ROLES)})),
    years REAL NOT NULL CHECK (years >= 0),
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

    def add_rater(self, rater: str, role: str, years: float) -> None:
        """Register a rater; a returning rater keeps their first registration."""
        with self.connect() as conn:
            conn.execute("INSERT OR IGNORE INTO raters VALUES (?, ?, ?, ?)", (rater, role, years, time.time()))

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
                    "SELECT a.rater, r.role, r.years, a.image, a.choice, a.rating, a.answered, a.seconds "
                    "FROM answers a JOIN raters r USING (rater) ORDER BY a.rater, a.answered"
                )
            ]

    def progress(self) -> list[dict]:
        with self.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    "SELECT r.rater, r.role, r.years, COUNT(a.image) AS answered FROM raters r "
                    "LEFT JOIN answers a USING (rater) GROUP BY r.rater ORDER BY r.started"
                )
            ]
