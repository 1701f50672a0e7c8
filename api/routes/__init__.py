"""The API's routers, one module per audience: lookups, analysts, admins, operations."""
