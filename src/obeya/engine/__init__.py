"""The engine: every figure Obeya shows, computed in SQL on the store."""
