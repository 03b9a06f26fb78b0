"""代表建议 (proposals) drawn from many items, and the monthly 专报 as a document the county edits and sends."""
