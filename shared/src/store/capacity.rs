//! Capacity units: what DynamoDB bills per request, measured and computed (feature
//! `test-support`: benches only, never in a function).
//!
//! [`CapacityMeter`] is an SDK interceptor. On each data-plane request it adds
//! `"ReturnConsumedCapacity": "INDEXES"` to the JSON body (before signing) and keeps the request
//! and the answer, with the `ConsumedCapacity` the server reports. Production stores never
//! install it: their requests are unchanged and cost nothing extra.
//!
//! [`formula`] computes the units from AWS's published rules instead of trusting the server
//! (DynamoDB Local's accounting is an emulation): item sizes as AWS defines them (attribute
//! names plus values; numbers by significant digits; 3 bytes per list or map plus 1 per
//! element), 1 write unit per started KB of the larger of the item before and after a write,
//! 4 KB per read unit (eventually consistent reads half, transactional ones double), 2x for
//! every action of a `TransactWriteItems`, and for every global secondary index the item is in,
//! before or after, the index writes AWS lists (a put, a delete, or both when the index key
//! moves; an update of projected attributes; nothing when the index entry is unchanged), each
//! sized by the projected entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::{json, Map, Value};

use super::keys;

/// Operations that accept `ReturnConsumedCapacity`.
const METERED: [&str; 10] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

/// Read and write units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl std::ops::AddAssign for Units {
    fn add_assign(&mut self, o: Units) {
        self.read += o.read;
        self.write += o.write;
    }
}

impl std::ops::Add for Units {
    type Output = Units;
    fn add(mut self, o: Units) -> Units {
        self += o;
        self
    }
}

/// The units of a request, split between the table and its indexes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub table: Units,
    pub indexes: BTreeMap<String, Units>,
}

impl Split {
    pub fn index_total(&self) -> Units {
        self.indexes.values().fold(Units::default(), |a, u| a + *u)
    }

    pub fn total(&self) -> Units {
        self.table + self.index_total()
    }

    pub fn add(&mut self, o: &Split) {
        self.table += o.table;
        for (k, v) in &o.indexes {
            *self.indexes.entry(k.clone()).or_default() += *v;
        }
    }
}

/// One request as sent and answered.
#[derive(Debug, Clone)]
pub struct Metered {
    pub operation: String,
    pub request: Value,
    /// The answer's body (None until answered, or when it was not JSON).
    pub response: Option<Value>,
    /// HTTP 200.
    pub ok: bool,
}

impl Metered {
    /// The units the server reported (`ConsumedCapacity`, one object or one per table).
    pub fn consumed(&self) -> Split {
        let mut split = Split::default();
        let Some(cc) = self
            .response
            .as_ref()
            .and_then(|r| r.get("ConsumedCapacity"))
        else {
            return split;
        };
        let list = match cc {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        // DynamoDB reports `ReadCapacityUnits`/`WriteCapacityUnits` where both can occur and
        // only `CapacityUnits` otherwise (DynamoDB Local: always): then the operation says which.
        let writes = matches!(
            self.operation.as_str(),
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
        );
        let units = |v: &Value| {
            let f = |name: &str| v.get(name).and_then(Value::as_f64);
            match (f("ReadCapacityUnits"), f("WriteCapacityUnits")) {
                (None, None) => {
                    let total = f("CapacityUnits").unwrap_or(0.0);
                    if writes {
                        Units {
                            read: 0.0,
                            write: total,
                        }
                    } else {
                        Units {
                            read: total,
                            write: 0.0,
                        }
                    }
                }
                (r, w) => Units {
                    read: r.unwrap_or(0.0),
                    write: w.unwrap_or(0.0),
                },
            }
        };
        for c in &list {
            let mut idx = BTreeMap::new();
            for (name, v) in c
                .get("GlobalSecondaryIndexes")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                idx.insert(name.clone(), units(v));
            }
            // Without a table figure, the total less the indexes is the table's.
            let table = match c.get("Table") {
                Some(t) => units(t),
                None => {
                    let total = units(c);
                    let ix = idx.values().fold(Units::default(), |a, u| a + *u);
                    Units {
                        read: total.read - ix.read,
                        write: total.write - ix.write,
                    }
                }
            };
            split.add(&Split {
                table,
                indexes: idx,
            });
        }
        split
    }
}

/// Which entry of the meter's log an in-flight request is (kept in the request's config bag,
/// so concurrent requests each find their own).
#[derive(Debug, Clone, Copy)]
struct Slot(usize);

impl Storable for Slot {
    type Storer = StoreReplace<Slot>;
}

/// Records every metered request (see the module documentation). Clones share the log.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    log: Arc<Mutex<Vec<Metered>>>,
    /// Keep only each answer's `ConsumedCapacity`, not the bodies (long runs: a Scan page is
    /// 1 MB).
    lean: bool,
}

impl CapacityMeter {
    /// A meter that keeps no request or answer bodies, only the consumed capacity.
    pub fn lean() -> CapacityMeter {
        CapacityMeter {
            lean: true,
            ..Default::default()
        }
    }

    /// Takes the requests recorded so far, leaving the log empty.
    pub fn take(&self) -> Vec<Metered> {
        std::mem::take(&mut *self.log.lock().expect("meter lock"))
    }

    /// The units the server reported over the requests recorded so far (the log is kept).
    pub fn consumed_so_far(&self) -> Split {
        let log = self.log.lock().expect("meter lock");
        let mut s = Split::default();
        for m in log.iter() {
            s.add(&m.consumed());
        }
        s
    }
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request_mut();
        let operation = req
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_string();
        if !METERED.contains(&operation.as_str()) {
            return Ok(());
        }
        let Some(mut body) = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        else {
            return Ok(());
        };
        if let Some(o) = body.as_object_mut() {
            o.insert("ReturnConsumedCapacity".into(), Value::from("INDEXES"));
        }
        let bytes = serde_json::to_vec(&body)?;
        req.headers_mut()
            .insert("content-length", bytes.len().to_string());
        *req.body_mut() = SdkBody::from(bytes);
        let mut log = self.log.lock().expect("meter lock");
        log.push(Metered {
            operation,
            request: if self.lean { Value::Null } else { body },
            response: None,
            ok: false,
        });
        cfg.interceptor_state().store_put(Slot(log.len() - 1));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Slot(i)) = cfg.load::<Slot>().copied() else {
            return Ok(());
        };
        let resp = ctx.response();
        let ok = resp.status().as_u16() == 200;
        let mut body = resp
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok());
        if self.lean {
            body = body.map(|b| json!({"ConsumedCapacity": b.get("ConsumedCapacity")}));
        }
        if let Some(m) = self.log.lock().expect("meter lock").get_mut(i) {
            m.ok = ok;
            m.response = body;
        }
        Ok(())
    }
}

/// A global secondary index: its key attributes and what it projects (None: ALL).
#[derive(Debug, Clone, Copy)]
pub struct IndexSpec {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
    pub projection: Option<&'static [&'static str]>,
}

/// The lead table's indexes, as template.yaml declares them.
pub const TABLE_INDEXES: [IndexSpec; 2] = [
    IndexSpec {
        name: keys::GSI1,
        pk: keys::GSI1_PK,
        sk: keys::GSI1_SK,
        projection: None,
    },
    IndexSpec {
        name: keys::GSI2,
        pk: keys::GSI2_PK,
        sk: keys::GSI2_SK,
        projection: Some(&keys::DAY_INDEX_PROJECTION),
    },
];

/// AWS's item size rules over DynamoDB JSON (`{"name": {"S": "..."}}`).
pub mod formula {
    use super::*;

    pub const WRITE_UNIT: usize = 1024;
    pub const READ_UNIT: usize = 4096;

    /// Bytes of a number: about one per two significant digits, plus one (AWS: "approximately
    /// (number of UTF-8-encoded bytes of attribute name) + (1 byte per two significant digits)
    /// + (1 byte)"); a negative number one more.
    pub fn number_size(text: &str) -> usize {
        let t = text.trim();
        let neg = t.starts_with('-');
        let mantissa = t
            .trim_start_matches(['-', '+'])
            .split(['e', 'E'])
            .next()
            .unwrap_or("");
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let significant = digits.trim_start_matches('0').trim_end_matches('0');
        significant.len().max(1).div_ceil(2) + 1 + usize::from(neg)
    }

    /// Bytes of one attribute value.
    pub fn value_size(v: &Value) -> usize {
        let Some((tag, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
            return 0;
        };
        let text_len = |x: &Value| x.as_str().map_or(0, str::len);
        let blob_len = |x: &Value| {
            use base64::Engine;
            x.as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .map_or(0, |b| b.len())
        };
        let list = |x: &Value| x.as_array().cloned().unwrap_or_default();
        match tag.as_str() {
            "S" => text_len(inner),
            "N" => number_size(inner.as_str().unwrap_or("0")),
            "B" => blob_len(inner),
            "BOOL" | "NULL" => 1,
            "SS" => list(inner).iter().map(text_len).sum(),
            "NS" => list(inner)
                .iter()
                .map(|n| number_size(n.as_str().unwrap_or("0")))
                .sum(),
            "BS" => list(inner).iter().map(blob_len).sum(),
            "L" => 3 + list(inner).iter().map(|e| 1 + value_size(e)).sum::<usize>(),
            "M" => {
                3 + inner
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, e)| 1 + k.len() + value_size(e))
                            .sum::<usize>()
                    })
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Bytes of an item: every attribute's name and value.
    pub fn item_size(item: &Map<String, Value>) -> usize {
        item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
    }

    /// The index entry of `item` (its table keys, index keys and projected attributes), or None
    /// when the item is not in the index.
    pub fn index_entry(item: &Map<String, Value>, idx: &IndexSpec) -> Option<Map<String, Value>> {
        if !item.contains_key(idx.pk) || !item.contains_key(idx.sk) {
            return None;
        }
        Some(match idx.projection {
            None => item.clone(),
            Some(attrs) => item
                .iter()
                .filter(|(k, _)| {
                    [keys::PK, keys::SK, idx.pk, idx.sk].contains(&k.as_str())
                        || attrs.contains(&k.as_str())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    fn units(bytes: usize, unit: usize) -> f64 {
        bytes.div_ceil(unit).max(1) as f64
    }

    /// Index writes of one item change (AWS, "Global secondary indexes: write activity").
    pub fn index_writes(
        before: Option<&Map<String, Value>>,
        after: Option<&Map<String, Value>>,
        idx: &IndexSpec,
    ) -> f64 {
        let old = before.and_then(|i| index_entry(i, idx));
        let new = after.and_then(|i| index_entry(i, idx));
        let key = |e: &Map<String, Value>| (e.get(idx.pk).cloned(), e.get(idx.sk).cloned());
        match (old, new) {
            (None, None) => 0.0,
            (None, Some(n)) => units(item_size(&n), WRITE_UNIT),
            (Some(o), None) => units(item_size(&o), WRITE_UNIT),
            (Some(o), Some(n)) if key(&o) != key(&n) => {
                units(item_size(&o), WRITE_UNIT) + units(item_size(&n), WRITE_UNIT)
            }
            (Some(o), Some(n)) if o != n => units(item_size(&n), WRITE_UNIT),
            _ => 0.0,
        }
    }

    /// Items of the table by key (`pk`, `sk`), DynamoDB JSON.
    pub type Snapshot = HashMap<(String, String), Map<String, Value>>;

    /// A key's (`pk`, `sk`) from an item or key in DynamoDB JSON.
    pub fn key_of(item: &Map<String, Value>) -> Option<(String, String)> {
        let s = |a: &str| item.get(a)?.get("S")?.as_str().map(str::to_string);
        Some((s(keys::PK)?, s(keys::SK)?))
    }

    /// One write action of a request.
    struct Write {
        key: (String, String),
        condition_check: bool,
    }

    fn writes_of(m: &Metered) -> (Vec<Write>, f64) {
        fn obj(v: Option<&Value>) -> Option<&Map<String, Value>> {
            v.and_then(Value::as_object)
        }
        let keyed = |v: Option<&Value>, cc: bool| {
            obj(v).and_then(|o| {
                let key = obj(o.get("Key")).or_else(|| obj(o.get("Item")))?;
                Some(Write {
                    key: key_of(key)?,
                    condition_check: cc,
                })
            })
        };
        let r = &m.request;
        match m.operation.as_str() {
            "PutItem" | "UpdateItem" | "DeleteItem" => (
                obj(Some(r))
                    .and_then(|o| {
                        let key = obj(o.get("Key")).or_else(|| obj(o.get("Item")))?;
                        Some(Write {
                            key: key_of(key)?,
                            condition_check: false,
                        })
                    })
                    .into_iter()
                    .collect(),
                1.0,
            ),
            "TransactWriteItems" => (
                r.get("TransactItems")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| {
                        keyed(a.get("Put"), false)
                            .or_else(|| keyed(a.get("Update"), false))
                            .or_else(|| keyed(a.get("Delete"), false))
                            .or_else(|| keyed(a.get("ConditionCheck"), true))
                    })
                    .collect(),
                2.0,
            ),
            "BatchWriteItem" => (
                r.get("RequestItems")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|t| t.values())
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(|w| {
                        obj(w.get("PutRequest"))
                            .and_then(|p| obj(p.get("Item")))
                            .or_else(|| obj(w.get("DeleteRequest")).and_then(|d| obj(d.get("Key"))))
                            .and_then(key_of)
                            .map(|key| Write {
                                key,
                                condition_check: false,
                            })
                    })
                    .collect(),
                1.0,
            ),
            _ => (Vec::new(), 1.0),
        }
    }

    /// Units of one request by AWS's formula, given the table before and after the operation
    /// the request belongs to. Writes that failed their condition (a cancelled transaction, a
    /// conditional write refused) are charged as AWS documents for a refused conditional write:
    /// the size of the item as it is (at least 1 unit), doubled in a transaction, no index
    /// writes. A key written by several requests of one operation is charged its before and
    /// after size each time (an upper bound).
    pub fn units_of(m: &Metered, before: &Snapshot, after: &Snapshot) -> Split {
        let mut split = Split::default();
        let (writes, factor) = writes_of(m);
        for w in &writes {
            let b = before.get(&w.key);
            let a = if m.ok { after.get(&w.key) } else { b };
            let size = if w.condition_check || !m.ok {
                b.map_or(0, item_size)
            } else {
                b.map_or(0, item_size).max(a.map_or(0, item_size))
            };
            split.table.write += factor * units(size, WRITE_UNIT);
            if m.ok && !w.condition_check {
                for idx in &TABLE_INDEXES {
                    let n = index_writes(b, a, idx);
                    if n > 0.0 {
                        split.indexes.entry(idx.name.to_string()).or_default().write += n;
                    }
                }
            }
        }
        split.table.read += read_units(m, before, after);
        split
    }

    /// Read units of a read request (0 for writes: their condition reads are free).
    fn read_units(m: &Metered, before: &Snapshot, after: &Snapshot) -> f64 {
        let r = &m.request;
        let consistent = |v: &Value| v.get("ConsistentRead").and_then(Value::as_bool) == Some(true);
        let factor = |c: bool| if c { 1.0 } else { 0.5 };
        let full = |item: &Map<String, Value>| {
            key_of(item)
                .and_then(|k| before.get(&k).or_else(|| after.get(&k)))
                .map_or_else(|| item_size(item), item_size)
        };
        let get = |key: Option<&Value>| {
            key.and_then(Value::as_object)
                .and_then(key_of)
                .and_then(|k| before.get(&k).or_else(|| after.get(&k)))
                .map_or(0, item_size)
        };
        let resp_items = |field: &str| -> Vec<Map<String, Value>> {
            m.response
                .as_ref()
                .and_then(|b| b.get(field))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|i| i.as_object().cloned()).collect())
                .unwrap_or_default()
        };
        match m.operation.as_str() {
            "GetItem" => factor(consistent(r)) * units(get(r.get("Key")), READ_UNIT),
            "BatchGetItem" => r
                .get("RequestItems")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|t| t.values())
                .map(|t| {
                    let f = factor(consistent(t));
                    t.get("Keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|k| f * units(get(Some(k)), READ_UNIT))
                        .sum::<f64>()
                })
                .sum(),
            "TransactGetItems" => r
                .get("TransactItems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|t| 2.0 * units(get(t.get("Get").and_then(|g| g.get("Key"))), READ_UNIT))
                .sum(),
            "Query" | "Scan" => {
                // What the answer holds, sized as stored (a projection or an index entry is
                // charged as its full item here: an upper bound for index queries). Items a
                // filter dropped are not in the answer and not counted.
                let bytes: usize = resp_items("Items").iter().map(full).sum();
                factor(consistent(r)) * units(bytes, READ_UNIT)
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::formula::*;
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn sizes_follow_aws_rules() {
        assert_eq!(number_size("1"), 2);
        assert_eq!(number_size("12345"), 4);
        assert_eq!(number_size("-12"), 3);
        assert_eq!(number_size("1000"), 2);
        assert_eq!(number_size("0.0015"), 2);
        // "pk" (2) + "LEAD#1" (6) + "n" (1) + 2 + "m" (1) + 3 + (1 + "a" 1 + 1 byte bool)
        let item =
            map(json!({"pk": {"S": "LEAD#1"}, "n": {"N": "7"}, "m": {"M": {"a": {"BOOL": true}}}}));
        assert_eq!(item_size(&item), 2 + 6 + 1 + 2 + 1 + 3 + 3);
    }

    #[test]
    fn index_writes_follow_aws_rules() {
        let idx = TABLE_INDEXES[1];
        let a = map(
            json!({"pk": {"S": "p"}, "sk": {"S": "s"}, "gsi2pk": {"S": "X"}, "gsi2sk": {"S": "1"}, "score": {"N": "5"}, "custom": {"S": "big"}}),
        );
        let mut moved = a.clone();
        moved.insert("gsi2pk".into(), json!({"S": "Y"}));
        let mut projected = a.clone();
        projected.insert("score".into(), json!({"N": "6"}));
        let mut unprojected = a.clone();
        unprojected.insert("custom".into(), json!({"S": "other"}));
        assert_eq!(index_writes(None, Some(&a), &idx), 1.0);
        assert_eq!(index_writes(Some(&a), None, &idx), 1.0);
        assert_eq!(index_writes(Some(&a), Some(&moved), &idx), 2.0);
        assert_eq!(index_writes(Some(&a), Some(&projected), &idx), 1.0);
        assert_eq!(index_writes(Some(&a), Some(&unprojected), &idx), 0.0);
        let entry = index_entry(&a, &idx).unwrap();
        assert!(!entry.contains_key("custom"));
    }

    #[test]
    fn a_transaction_doubles_and_a_refused_one_is_charged_the_existing_items() {
        let item = json!({"pk": {"S": "A"}, "sk": {"S": "#ID"}, "x": {"S": "y".repeat(1500)}});
        let key = ("A".to_string(), "#ID".to_string());
        let after: Snapshot = [(key.clone(), map(item.clone()))].into();
        let m = Metered {
            operation: "TransactWriteItems".into(),
            request: json!({"TransactItems": [{"Put": {"Item": item}}]}),
            response: Some(json!({})),
            ok: true,
        };
        assert_eq!(units_of(&m, &Snapshot::new(), &after).table.write, 4.0);
        let refused = Metered { ok: false, ..m };
        assert_eq!(units_of(&refused, &after, &after).table.write, 4.0);
        assert_eq!(
            units_of(&refused, &Snapshot::new(), &Snapshot::new())
                .table
                .write,
            2.0
        );
    }
}
