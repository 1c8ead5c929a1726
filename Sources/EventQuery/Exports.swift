// Answers are made of stored events read back as GridEvents (`GridEvent(stored:)`), so a user of the query
// engine gets the record mapping with it.
@_exported import EventRecords
