"""Architect data tables: the block list a contact center's inbound flow checks.

Genesys' ani-blacklist blueprint keeps blocked numbers in a data table keyed by the number;
the org's inbound flow looks the caller's number up there and refuses the call when it is
listed. This module reads a table's schema and reads, adds, updates and deletes its rows,
through the same session (token, pacing, retries, errors) as every other request:

    GET    /api/v2/flows/datatables/{id}?expand=schema
    GET    /api/v2/flows/datatables/{id}/rows/{key}
    POST   /api/v2/flows/datatables/{id}/rows
    PUT    /api/v2/flows/datatables/{id}/rows/{key}
    DELETE /api/v2/flows/datatables/{id}/rows/{key}
"""

from __future__ import annotations

from typing import Any

from genesys.errors import GenesysRequestRejected, NotFound
from genesys.models import TableSchema
from genesys.session import GenesysSession

VIEW_PERMISSION = "architect:datatableRow:view"
ADD_PERMISSION = "architect:datatableRow:add"
EDIT_PERMISSION = "architect:datatableRow:edit"
DELETE_PERMISSION = "architect:datatableRow:delete"


class DataTables:
    """Reads and writes Architect data tables through one `GenesysSession`."""

    def __init__(self, session: GenesysSession) -> None:
        self._session = session

    def schema(self, table_id: str) -> TableSchema:
        """The table's schema; `GenesysRequestRejected` if Genesys has no such table."""
        try:
            raw = self._session.request(
                "reading the block-list table",
                lambda: self._session.call_json(
                    "GET",
                    "/api/v2/flows/datatables/{datatableId}",
                    path_params={"datatableId": table_id},
                    query_params={"expand": "schema"},
                ),
                needs=VIEW_PERMISSION,
            )
        except NotFound as exc:
            raise GenesysRequestRejected(
                f"Genesys Cloud has no data table {table_id} (or the bot's role cannot see it).",
                status=404,
                code=exc.code,
                context_id=exc.context_id,
            ) from exc
        return _schema(table_id, raw)

    def row(self, table_id: str, key: str) -> dict[str, Any] | None:
        """The row with this key, or None when the table has none."""
        try:
            raw = self._session.request(
                "reading the block list",
                lambda: self._session.call_json(
                    "GET",
                    "/api/v2/flows/datatables/{datatableId}/rows/{rowId}",
                    path_params={"datatableId": table_id, "rowId": key},
                    query_params={"showbrief": False},
                ),
                needs=VIEW_PERMISSION,
            )
        except NotFound:
            return None
        if not isinstance(raw, dict):
            raise ValueError("a data table row is not a JSON object")
        return raw

    def add_row(self, table_id: str, row: dict[str, Any]) -> None:
        """Add a row (`row` holds `key` and the table's columns)."""
        self._session.request(
            "blocking the number",
            lambda: self._session.call_json(
                "POST",
                "/api/v2/flows/datatables/{datatableId}/rows",
                path_params={"datatableId": table_id},
                body=row,
            ),
            needs=ADD_PERMISSION,
        )

    def update_row(self, table_id: str, key: str, row: dict[str, Any]) -> None:
        """Replace the row with this key."""
        self._session.request(
            "updating the block",
            lambda: self._session.call_json(
                "PUT",
                "/api/v2/flows/datatables/{datatableId}/rows/{rowId}",
                path_params={"datatableId": table_id, "rowId": key},
                body=row,
            ),
            needs=EDIT_PERMISSION,
        )

    def delete_row(self, table_id: str, key: str) -> bool:
        """Delete the row with this key; False when it was already gone."""
        try:
            self._session.request(
                "unblocking the number",
                lambda: self._session.call_json(
                    "DELETE",
                    "/api/v2/flows/datatables/{datatableId}/rows/{rowId}",
                    path_params={"datatableId": table_id, "rowId": key},
                ),
                needs=DELETE_PERMISSION,
            )
        except NotFound:
            return False
        return True


def _schema(table_id: str, raw: Any) -> TableSchema:
    if not isinstance(raw, dict):
        raise ValueError("the data table is not a JSON object")
    schema = raw.get("schema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        raise ValueError("the data table came without its schema")
    columns = {
        str(name): str(spec.get("type", "")) if isinstance(spec, dict) else ""
        for name, spec in properties.items()
    }
    name = raw.get("name")
    return TableSchema(table_id, name if isinstance(name, str) else table_id, columns)
