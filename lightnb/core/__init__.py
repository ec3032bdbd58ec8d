"""The engine: components and their state rules, the work-call decision table, the app's event loop."""
