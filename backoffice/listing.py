"""What a record list shows for a request: search, filters, sort, page and totals.

The list page, its htmx partial and the CSV export read the same request parameters through
``Listing``, so "export what I see" holds by construction. Records come from
``reads.records_for`` and ``reads.sorted_records``, the functions the API pages with too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import QueryDict

from backoffice.filters import Filters, Named, build_filters
from zstorage import reads
from zstorage.errors import ZStorageError
from zstorage.fields import kind_of
from zstorage.models import Field, Record, Table

PAGE_SIZES = [25, 50, 100]
DEFAULT_PAGE_SIZE = 25


@dataclass(frozen=True)
class Column:
    """A sortable column header: its link's sort value and the state screen readers hear."""

    key: str
    label: str
    field: Field | None
    href: str
    aria_sort: str
    numeric: bool


@dataclass
class Listing:
    table: Table
    fields: dict[str, Field]
    params: QueryDict
    search: str
    sort_spec: str
    sort: list[reads.SortKey]
    filters: Filters
    per_page: int
    errors: list[str]

    @classmethod
    def from_request(cls, table: Table, params: QueryDict, named: Named | None = None) -> Listing:
        fields = reads.fields_of(table)
        errors: list[str] = []
        sort_spec = params.get("sort", "").strip()
        try:
            sort = reads.parse_sort(sort_spec, fields)
        except ZStorageError as exc:
            errors.append(exc.message)
            sort_spec, sort = "", []
        try:
            per_page = int(params.get("per_page", DEFAULT_PAGE_SIZE))
        except ValueError:
            per_page = DEFAULT_PAGE_SIZE
        if per_page not in PAGE_SIZES:
            per_page = DEFAULT_PAGE_SIZE
        return cls(
            table=table,
            fields=fields,
            params=params,
            search=params.get("q", "").strip(),
            sort_spec=sort_spec,
            sort=sort,
            filters=build_filters(fields, params, named),
            per_page=per_page,
            errors=errors,
        )

    def matching(self) -> QuerySet[Record]:
        return reads.records_for(
            self.table, query=self.filters.query, search=self.search, fields=self.fields
        )

    def ordered(self) -> QuerySet[Record]:
        records, _ = reads.sorted_records(self.matching(), self.sort, self.fields)
        return records

    def page(self) -> Page[Record]:
        paginator = Paginator(self.ordered(), self.per_page)
        return paginator.get_page(self.params.get("page"))

    def totals(self) -> dict[str, Any]:
        """Sums of the number fields over every matching record (not only this page)."""
        sums: dict[str, Any] = {}
        for key, fld in self.fields.items():
            if kind_of(fld.type).summable:
                rows = reads.aggregate(self.matching(), self.fields, function="sum", field=key)
                total = rows[0]["value"]
                # Shown like the column's values: "280.00" for a field of two places.
                sums[key] = None if total is None else kind_of(fld.type).coerce(total, fld.options)
        return sums

    def columns(self) -> list[Column]:
        current = {item.key: item.descending for item in self.sort}
        columns = [Column("id", "#", None, *self._sorting("id", current), numeric=True)]
        for key, fld in self.fields.items():
            numeric = kind_of(fld.type).summable
            columns.append(Column(key, fld.name, fld, *self._sorting(key, current), numeric))
        return columns

    def _sorting(self, key: str, current: Mapping[str, bool]) -> tuple[str, str]:
        """The header's link and state: a click sorts ascending, a second click descending."""
        if key not in current:
            return self.query_string(sort=key), "none"
        if current[key]:
            return self.query_string(sort=key), "descending"
        return self.query_string(sort=f"-{key}"), "ascending"

    def page_links(self, page: Page[Record]) -> list[tuple[str, str | None]]:
        """(label, link) for each page number shown; the current page and "…" have no link."""
        links: list[tuple[str, str | None]] = []
        for number in page.paginator.get_elided_page_range(page.number, on_each_side=2):
            if number == page.paginator.ELLIPSIS or number == page.number:
                links.append((str(number), None))
            else:
                links.append((str(number), self.query_string(page=number)))
        return links

    def query_string(self, **changes: Any) -> str:
        """This listing's URL parameters with ``changes`` (None removes one)."""
        params = self.params.copy()
        for name, value in changes.items():
            if value is None or value == "":
                params.pop(name, None)
            else:
                params[name] = str(value)
        if "page" not in changes:
            params.pop("page", None)  # a new sort or filter starts again at page one
        encoded = params.urlencode()
        return f"?{encoded}" if encoded else "?"
