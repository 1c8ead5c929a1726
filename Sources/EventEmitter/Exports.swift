// What a producer needs besides the emitter itself, so `import EventEmitter` is enough: the event kinds with their
// typed fields, custom field values, the event and type names, and the validation error.
@_exported import enum GridEvents.GridEventKind
@_exported import enum GridEvents.FieldValue
@_exported import struct GridEvents.GridEvent
@_exported import enum GridEvents.EventType
@_exported import struct GridEvents.EventError
