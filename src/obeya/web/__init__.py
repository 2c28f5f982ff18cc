"""The dashboard's drawing: server-side SVG (the value stream map) and, later, pages."""
