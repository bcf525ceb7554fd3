"""ZStorage's REST API under ``/api/v1/zstorage/``: thin views over the services layer."""
