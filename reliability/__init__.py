"""`make reliability`: hostile inputs, load and faults on the local loop, measured in one table."""
