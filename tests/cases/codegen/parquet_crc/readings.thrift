// Rows of the Parquet files pyarrow wrote with page checksums (`write_page_checksum=True`).
namespace rs test.parquet_crc

struct Reading {
  1: required string id
  2: required i64    value
}
