// The catalogue's API is written in GridBase's terms (BinaryWriter, TimeFormat, ConfigFile for the files that
// name events), so a user of GridEvents gets the base with it.
@_exported import GridBase
