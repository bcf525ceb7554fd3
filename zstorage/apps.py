from django.apps import AppConfig


class ZStorageConfig(AppConfig):
    name = "zstorage"
    verbose_name = "ZStorage"
