"""The back-office: layout, login, dashboard and the groups that gate its pages."""
