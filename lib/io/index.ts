// kiln.io: reading and writing tensors in files.
export {
  saveSafetensors,
  saveSafetensorsSync,
  loadSafetensors,
  loadSafetensorsSync,
  serializeSafetensors,
  parseSafetensors,
  SAFETENSORS_MAX_HEADER_BYTES,
  type SafetensorsLoadOptions,
  type SafetensorsContents,
  type TensorMap,
  type UnsupportedDTypeAction,
} from './safetensors';
