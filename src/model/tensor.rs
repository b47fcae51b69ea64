//! Row-major f32 tensors on the host: a model file's weights as read, before a backend
//! uploads them (and the host copy is dropped).

#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn vector(data: Vec<f32>) -> Self {
        HostTensor {
            shape: vec![data.len()],
            data,
        }
    }
}
