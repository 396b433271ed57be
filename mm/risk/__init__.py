"""The risk engine: a pipeline of pure rules over proposed quotes (FR-500–513), kill switch, aggregate limits."""
