"""Topic delivery: retry schedules and the rules around pushing notifications."""
