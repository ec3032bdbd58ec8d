"""The pure core: components and their state rules, the work-call decision table, and the engine — events in,
instructions out (no threads, clocks or I/O; see docs/architecture.md)."""
