package runs

// ListKeyOf, Get and Put open the list cache's own methods to its tests.
func ListKeyOf(teamID int64) listKey { return listKey{teamID: teamID} }

func (c *ListCache) Get(key listKey, version int64) ([]byte, bool) { return c.get(key, version) }

func (c *ListCache) Put(key listKey, version int64, body []byte) { c.put(key, version, body) }

// EntryOverhead is what a kept page counts beside its body.
const EntryOverhead = entryOverhead
