// Writes a small multi-frame DICOM file (explicit VR little endian, 16-bit
// MONOCHROME2) for the frame-slider test: pydicom's test files have one
// frame each. It carries a made-up patient name and ID so a test can check
// that identifying tags are never shown or exported. Follows DICOM PS3.5
// (data elements, 7.1.2) and PS3.10 (file meta information, 7.1).

const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';
const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

/** One data element: tag (group, element), VR, value bytes (padded to even length). */
function element(group, elem, vr, value) {
  let bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1');
  if (bytes.length % 2) bytes = Buffer.concat([bytes, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
  const head = Buffer.alloc(LONG_VRS.has(vr) ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elem, 2);
  head.write(vr, 4, 'latin1');
  if (LONG_VRS.has(vr)) head.writeUInt32LE(bytes.length, 8);
  else head.writeUInt16LE(bytes.length, 6);
  return Buffer.concat([head, bytes]);
}

const us = (v) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
const ul = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };

/**
 * A `frames`-frame, `size`×`size` DICOM file; frame k shows a bright disc at
 * a different place, so frames give different images.
 */
export function multiFrameDicom({ size = 64, frames = 3, patientName = 'Doe^Jane', patientId = 'ID-0042-SECRET' } = {}) {
  const pixels = Buffer.alloc(size * size * frames * 2);
  for (let f = 0; f < frames; f++) {
    const cx = ((f + 1) * size) / (frames + 1);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const head = Math.hypot(x - size / 2, y - size / 2) < size * 0.42 ? 900 : 40;
        const disc = Math.hypot(x - cx, y - size * 0.45) < size * 0.12 ? 1600 : 0;
        pixels.writeUInt16LE(head + disc + ((x * 7 + y * 13) % 50), ((f * size + y) * size + x) * 2);
      }
    }
  }
  const sopInstance = '1.2.826.0.1.3680043.9.7777.1.1';
  const metaBody = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 0x0002, 'UI', MR_IMAGE_STORAGE),
    element(0x0002, 0x0003, 'UI', sopInstance),
    element(0x0002, 0x0010, 'UI', EXPLICIT_VR_LITTLE_ENDIAN),
    element(0x0002, 0x0012, 'UI', '1.2.826.0.1.3680043.9.7777'),
  ]);
  const dataset = Buffer.concat([
    element(0x0008, 0x0016, 'UI', MR_IMAGE_STORAGE),
    element(0x0008, 0x0018, 'UI', sopInstance),
    element(0x0008, 0x0060, 'CS', 'MR'),
    element(0x0010, 0x0010, 'PN', patientName),
    element(0x0010, 0x0020, 'LO', patientId),
    element(0x0010, 0x0030, 'DA', '19700101'),
    element(0x0028, 0x0002, 'US', us(1)),
    element(0x0028, 0x0004, 'CS', 'MONOCHROME2'),
    element(0x0028, 0x0008, 'IS', String(frames)),
    element(0x0028, 0x0010, 'US', us(size)),
    element(0x0028, 0x0011, 'US', us(size)),
    element(0x0028, 0x0100, 'US', us(16)),
    element(0x0028, 0x0101, 'US', us(12)),
    element(0x0028, 0x0102, 'US', us(11)),
    element(0x0028, 0x0103, 'US', us(0)),
    element(0x7fe0, 0x0010, 'OW', pixels),
  ]);
  return Buffer.concat([
    Buffer.alloc(128), Buffer.from('DICM', 'latin1'),
    element(0x0002, 0x0000, 'UL', ul(metaBody.length)), metaBody, dataset,
  ]);
}
