// kiln.nn: modules for building and training models.
export { Module, ModuleList, type StateDict, type LoadStateOptions } from './module';
export { Initializer, type InitOptions } from './init';
export { Linear, Embedding, RMSNorm, LayerNorm, Dropout, SwiGLU, type LinearOptions } from './layers';
export { CausalSelfAttention, type AttentionConfig } from './attention';
export { TransformerBlock, TransformerLM, defaultHiddenDim, type TransformerConfig, type LMOutput, type LMForwardOptions } from './transformer';
export { KVCache, type KVCacheOptions } from './kv-cache';
export { generate, sampleToken, type GenerateOptions, type GenerativeLM, type SamplingOptions } from './generate';
