"""What vexplore records: events, reports, resource use."""
