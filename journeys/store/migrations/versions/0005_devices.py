"""One device model: devices kept in a profile's ``devices`` attribute move to the table.

Before this, a ``devices`` list given with a profile stayed among its attributes while
``add_device`` wrote the devices table, and the push channel removed unregistered tokens
from the attribute only. Each item that names a token (a token string, or an object with
a ``token``) becomes a row of ``devices`` (platform ``unknown`` when not given, the
object's other keys as the device's attributes; a row already there for that token is
kept), and the attribute is removed. Items that name no token could never be pushed to
and are dropped with the attribute.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_profiles = sa.table(
    "profiles",
    sa.column("id", sa.String),
    sa.column("attributes", sa.JSON),
)
_devices = sa.table(
    "devices",
    sa.column("recipient_id", sa.String),
    sa.column("token", sa.String),
    sa.column("platform", sa.String),
    sa.column("attributes", sa.JSON),
    sa.column("last_used", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def _rows(recipient_id: str, listed: object, now: datetime) -> list[dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for item in listed if isinstance(listed, list) else []:
        rest = dict(item) if isinstance(item, dict) else {"token": item}
        token, platform = rest.pop("token", None), rest.pop("platform", None)
        if not isinstance(token, str) or not token.strip() or len(token) > 4096:
            continue
        found[token] = {
            "recipient_id": recipient_id,
            "token": token,
            "platform": platform[:32] if isinstance(platform, str) and platform else "unknown",
            "attributes": rest,
            "last_used": None,
            "created_at": now,
        }
    return list(found.values())


def upgrade() -> None:
    """Move every profile's ``devices`` attribute into the devices table."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        has_devices = sa.text("CAST(profiles.attributes AS JSONB) ? 'devices'")
        insert: postgresql.Insert | sqlite.Insert = postgresql.insert(_devices)
    else:
        has_devices = sa.text("json_type(profiles.attributes, '$.devices') IS NOT NULL")
        insert = sqlite.insert(_devices)
    insert = insert.on_conflict_do_nothing(index_elements=["recipient_id", "token"])
    now = datetime.now(UTC)
    after = ""
    while True:
        page = bind.execute(
            sa.select(_profiles.c.id, _profiles.c.attributes)
            .where(has_devices, _profiles.c.id > after)
            .order_by(_profiles.c.id)
            .limit(1000)
        ).all()
        if not page:
            return
        for recipient_id, attributes in page:
            rest = dict(attributes)
            rows = _rows(recipient_id, rest.pop("devices", None), now)
            if rows:
                bind.execute(insert, rows)
            bind.execute(
                sa.update(_profiles).where(_profiles.c.id == recipient_id).values(attributes=rest)
            )
        after = page[-1][0]


def downgrade() -> None:
    """Nothing to undo: the code of 0004 reads the devices table as well."""
