"""Pictures and screenshots: EXIF/XMP/IPTC dates and places, and OCR of the text in them."""
