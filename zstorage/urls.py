from django.urls import path

from zstorage.api import record_views, schema_views

app_name = "zstorage"

urlpatterns = [
    path("tables/", schema_views.TableListView.as_view(), name="tables"),
    path("tables/<slug:slug>/", schema_views.TableDetailView.as_view(), name="table"),
    path("tables/<slug:slug>/fields/", schema_views.FieldListView.as_view(), name="fields"),
    path(
        "tables/<slug:slug>/fields/<str:key>/", schema_views.FieldDetailView.as_view(), name="field"
    ),
    path("tables/<slug:slug>/rules/", schema_views.RuleListView.as_view(), name="rules"),
    path(
        "tables/<slug:slug>/rules/<int:rule_id>/",
        schema_views.RuleDetailView.as_view(),
        name="rule",
    ),
    path("tables/<slug:slug>/records/", record_views.RecordListView.as_view(), name="records"),
    path("tables/<slug:slug>/records/query", record_views.RecordQueryView.as_view(), name="query"),
    path("tables/<slug:slug>/records/bulk", record_views.RecordBulkView.as_view(), name="bulk"),
    path(
        "tables/<slug:slug>/records/aggregate",
        record_views.RecordAggregateView.as_view(),
        name="aggregate",
    ),
    path(
        "tables/<slug:slug>/records/<int:record_id>/",
        record_views.RecordDetailView.as_view(),
        name="record",
    ),
    path(
        "tables/<slug:slug>/records/<int:record_id>/children",
        record_views.RecordChildrenView.as_view(),
        name="children",
    ),
    path(
        "tables/<slug:slug>/records/<int:record_id>/history",
        record_views.RecordHistoryView.as_view(),
        name="history",
    ),
]
