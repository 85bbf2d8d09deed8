//! GPU layer: device and capabilities, tiers, pipeline cache, buffers, readback.
