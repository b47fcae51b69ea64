//! Storage buffers recycled by size: a batch's intermediate tensors reuse the previous
//! batch's buffers instead of allocating device memory again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Device buffers not in use, by byte size (rounded up to a power of two).
pub struct BufferPool {
    device: wgpu::Device,
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

impl BufferPool {
    pub fn new(device: wgpu::Device) -> Self {
        BufferPool {
            device,
            free: Mutex::new(HashMap::new()),
        }
    }

    /// A buffer of at least `bytes` bytes, usable as storage, copy source and destination.
    pub fn take(self: &Arc<Self>, bytes: u64) -> PooledBuffer {
        let size = bytes.max(16).next_power_of_two();
        let reused = self
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&size)
            .and_then(Vec::pop);
        let buffer = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensor"),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        PooledBuffer {
            buffer: Some(buffer),
            size,
            pool: self.clone(),
        }
    }
}

/// A buffer that returns to its pool when dropped. Commands already recorded that use it stay
/// valid: later users are recorded after them in the same queue order.
pub struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    size: u64,
    pool: Arc<BufferPool>,
}

impl PooledBuffer {
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool
                .free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(self.size)
                .or_default()
                .push(b);
        }
    }
}
