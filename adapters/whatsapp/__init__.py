"""WhatsApp chat exports (a chat text, or a zip with its media)."""
