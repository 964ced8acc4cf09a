"""What a person does with a case: timeline, report, export, verify, notes, watch."""
