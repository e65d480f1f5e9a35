//! Criterion benchmarks of `timelapser-core`'s hot paths: what the origin and the edge run on
//! every request (entity tags, preconditions, ranges, Cache-Control) and on every event.
//!
//! Run natively with
//! `cargo bench -p timelapser-core --bench core -- --warm-up-time 1 --measurement-time 3`.
//! The benchmark ids (`etag/timestamp`, `conditional/from_headers_and_evaluate/...`) are quoted
//! in BENCHMARKS.md: rename one only together with that file.
//!
//! Criterion is a native-only dev-dependency, so on wasm32 this file is an empty `main`.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main();
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;
    use std::time::{Duration, SystemTime};

    use chrono::{DateTime, TimeZone, Utc};
    use criterion::{BenchmarkId, Criterion, Throughput};
    use http::{header, HeaderMap, HeaderValue, Method};
    use timelapser_core::cache_control::CacheControl;
    use timelapser_core::conditional::{
        last_modified_value, Precondition, Preconditions, Validators,
    };
    use timelapser_core::etag::{CollectionTag, EntityTag, HashAlgorithm};
    use timelapser_core::events::{Event, EventStreamParser};
    use timelapser_core::policy::ContentKind;
    use timelapser_core::range::{self, ByteRange, RangeResponse};
    use timelapser_core::resources::Image;

    /// The size of a thumbnail.
    const THUMBNAIL_BYTES: usize = 45 * 1024;

    /// A capture time with a non-zero microsecond part, as real `updated_at`s have.
    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap()
    }

    /// Deterministic, incompressible-looking bytes (a 64-bit LCG), so runs are comparable.
    fn thumbnail() -> Vec<u8> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..THUMBNAIL_BYTES)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect()
    }

    /// A SHA-256-shaped opaque value (64 hex digits), different for each `n`.
    fn hex64(n: u64) -> String {
        format!("{:016x}", n).repeat(4)
    }

    /// The headers a browser sends with any GET, so that lookups are not in an empty map.
    fn browser_request() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("timelapser.example"));
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("image/avif,image/webp,image/png,image/*;q=0.8,*/*;q=0.5"),
        );
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br, zstd"),
        );
        headers.insert(
            header::REFERER,
            HeaderValue::from_static("https://timelapser.example/cameras/1"),
        );
        headers
    }

    fn image_captured() -> Event {
        let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        Event::ImageCaptured {
            camera_id: 12,
            timelapse_id: Some(345),
            image: Image {
                id: 1_234_567,
                camera_id: 12,
                timelapse_id: Some(345),
                captured_at: at(),
                width: 1920,
                height: 1080,
                bytes: 412_345,
                sha256: sha256.into(),
                url: format!("/media/images/{sha256}.jpg"),
                thumbnail_url: format!("/media/thumbnails/{sha256}.jpg"),
            },
            image_count: 86_400,
        }
    }

    fn etag(c: &mut Criterion) {
        let mut group = c.benchmark_group("etag");
        let updated_at = at();

        group.bench_function("timestamp", |b| {
            b.iter(|| EntityTag::from_timestamp(black_box(updated_at)))
        });

        group.bench_function("composite_timestamp", |b| {
            b.iter(|| EntityTag::composite_with_timestamp(black_box(42_i64), black_box(updated_at)))
        });

        let members: Vec<(i64, DateTime<Utc>)> = (0..50)
            .map(|i| {
                (
                    1_000 + i,
                    updated_at + chrono::Duration::microseconds(i * 1_000_003),
                )
            })
            .collect();
        group.bench_function("collection_50", |b| {
            b.iter(|| {
                black_box(&members)
                    .iter()
                    .fold(CollectionTag::new(), |tag, &(id, updated_at)| {
                        tag.member_at(id, updated_at)
                    })
                    .finish()
            })
        });

        let quoted = format!("\"{}\"", hex64(7));
        group.bench_function("parse", |b| {
            b.iter(|| EntityTag::parse(black_box(quoted.as_bytes())))
        });

        // Throughput applies to every benchmark added after it in a group: keep these last.
        let content = thumbnail();
        group.throughput(Throughput::Bytes(content.len() as u64));
        group.bench_function("content_sha256_45KiB", |b| {
            b.iter(|| EntityTag::from_content(black_box(&content), HashAlgorithm::Sha256))
        });
        group.bench_function("content_md5_45KiB", |b| {
            b.iter(|| EntityTag::from_content(black_box(&content), HashAlgorithm::Md5))
        });
        group.finish();
    }

    fn conditional(c: &mut Criterion) {
        let mut group = c.benchmark_group("conditional");
        // The current representation: a thumbnail with its content-hash tag and mtime.
        let current = EntityTag::from_content(&thumbnail(), HashAlgorithm::Sha256);
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let validators = Validators::new(Some(&current), Some(modified));

        let mut if_none_match_hit = browser_request();
        if_none_match_hit.insert(header::IF_NONE_MATCH, current.to_header_value());

        let mut if_none_match_list5_miss = browser_request();
        let list = (1..=5)
            .map(|n| format!("\"{}\"", hex64(n)))
            .collect::<Vec<_>>()
            .join(", ");
        if_none_match_list5_miss
            .insert(header::IF_NONE_MATCH, HeaderValue::from_str(&list).unwrap());

        let mut if_modified_since = browser_request();
        if_modified_since.insert(header::IF_MODIFIED_SINCE, last_modified_value(modified));

        let none = browser_request();

        let cases = [
            (
                "if_none_match_hit",
                if_none_match_hit,
                Precondition::NotModified,
            ),
            (
                "if_none_match_list5_miss",
                if_none_match_list5_miss,
                Precondition::Proceed,
            ),
            (
                "if_modified_since",
                if_modified_since,
                Precondition::NotModified,
            ),
            ("no_preconditions", none, Precondition::Proceed),
        ];
        for (name, headers, expected) in &cases {
            // Measure the path the name promises, not an accidental other one.
            assert_eq!(
                Preconditions::from_headers(headers).evaluate(&Method::GET, &validators),
                *expected,
                "{name}"
            );
            group.bench_with_input(
                BenchmarkId::new("from_headers_and_evaluate", name),
                headers,
                |b, headers| {
                    b.iter(|| {
                        Preconditions::from_headers(black_box(headers))
                            .evaluate(&Method::GET, black_box(&validators))
                    })
                },
            );
        }
        group.finish();
    }

    fn range_requests(c: &mut Criterion) {
        let mut group = c.benchmark_group("range");
        // A browser seeking in a rendered video: an open range with the video's tag in If-Range.
        let current = EntityTag::strong(hex64(99)).unwrap();
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let validators = Validators::new(Some(&current), Some(modified));
        let length: u64 = 25 * 1024 * 1024;
        let mut headers = browser_request();
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=1048576-"));
        headers.insert(header::IF_RANGE, current.to_header_value());
        assert_eq!(
            range::evaluate(&Method::GET, &headers, length, &validators),
            RangeResponse::Partial(ByteRange {
                first: 1_048_576,
                last: length - 1
            })
        );
        group.bench_function("evaluate", |b| {
            b.iter(|| {
                range::evaluate(
                    &Method::GET,
                    black_box(&headers),
                    black_box(length),
                    black_box(&validators),
                )
            })
        });
        group.finish();
    }

    fn cache_control(c: &mut Criterion) {
        let mut group = c.benchmark_group("cache_control");
        let inputs: [(&str, &[u8]); 2] = [
            ("immutable", b"public, max-age=31536000, immutable"),
            (
                "response_8_directives",
                b"public, max-age=60, s-maxage=600, stale-while-revalidate=30, \
                  stale-if-error=86400, proxy-revalidate, no-transform, \
                  no-cache=\"set-cookie, x-request-id\"",
            ),
        ];
        for (name, value) in inputs {
            group.bench_with_input(BenchmarkId::new("parse", name), value, |b, value| {
                b.iter(|| CacheControl::parse(black_box(value)))
            });
        }
        group.finish();

        let mut group = c.benchmark_group("policy");
        group.bench_function("cache_control", |b| {
            b.iter(|| black_box(ContentKind::ImmutableMedia).cache_control())
        });
        group.finish();
    }

    fn events(c: &mut Criterion) {
        let mut group = c.benchmark_group("events");
        let event = image_captured();
        group.bench_function("to_frame", |b| {
            b.iter(|| black_box(&event).to_frame(black_box(1_234_567)))
        });

        let stream: String = (1..=100).map(|id| event.to_frame(id)).collect();
        assert_eq!(EventStreamParser::new().push(stream.as_bytes()).len(), 100);
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_function("parse", |b| {
            b.iter(|| EventStreamParser::new().push(black_box(stream.as_bytes())))
        });
        group.finish();
    }

    pub fn main() {
        let mut c = Criterion::default().configure_from_args();
        etag(&mut c);
        conditional(&mut c);
        range_requests(&mut c);
        cache_control(&mut c);
        events(&mut c);
        c.final_summary();
    }
}
