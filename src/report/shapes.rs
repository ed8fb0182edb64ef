//! Country shapes for the report's map: Natural Earth's 1:50m admin-0
//! countries as the npm package `world-atlas` ships them (TopoJSON, see
//! `data/world/README.md`), embedded in the binary and decoded on first
//! use into rings of longitude/latitude points, keyed by ISO 3166-1
//! alpha-2.
//!
//! TopoJSON stores each border once as an *arc* of quantized,
//! delta-encoded points; a polygon ring lists arc indices, a negative
//! index `!i` meaning arc `i` walked backwards. Decoding undoes the delta
//! encoding and the quantization, then joins each ring's arcs (an arc
//! starts where the previous one ended, so that point is not repeated).

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The shipped file, byte for byte as the package has it.
const TOPOLOGY: &str = include_str!("../../data/world/countries-50m.json");

/// A longitude/latitude point in degrees.
pub type Point = [f64; 2];

/// A closed ring of points.
pub type Ring = Vec<Point>;

/// A polygon: its outer ring, then its holes.
pub type Polygon = Vec<Ring>;

/// One country (or Natural Earth feature) and its shape.
#[derive(Debug)]
pub struct Country {
    /// ISO 3166-1 alpha-2, `None` for the few features without an ISO
    /// code (Kosovo, Northern Cyprus, Somaliland, ...).
    pub code: Option<&'static str>,
    /// Natural Earth's name for it.
    pub name: String,
    /// Its polygons.
    pub polygons: Vec<Polygon>,
    /// Bounding box of all its polygons: west, south, east, north.
    pub bbox: [f64; 4],
    /// Index of its largest polygon (the mainland, for labels and views).
    pub main: usize,
}

impl Country {
    /// Bounding box of the largest polygon: west, south, east, north.
    #[must_use]
    pub fn main_bbox(&self) -> [f64; 4] {
        self.polygons
            .get(self.main)
            .and_then(|p| p.first())
            .map_or(self.bbox, |ring| bbox(ring))
    }

    /// The area centroid of the largest polygon's outer ring: where a
    /// label or a route's turn goes.
    #[must_use]
    pub fn centroid(&self) -> Point {
        let Some(ring) = self.polygons.get(self.main).and_then(|p| p.first()) else {
            let [w, s, e, n] = self.bbox;
            return [(w + e) / 2.0, (s + n) / 2.0];
        };
        let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
        for pair in ring.windows(2) {
            let ([x0, y0], [x1, y1]) = (pair[0], pair[1]);
            let cross = x0 * y1 - x1 * y0;
            a += cross;
            cx += (x0 + x1) * cross;
            cy += (y0 + y1) * cross;
        }
        if a.abs() < f64::EPSILON {
            let [w, s, e, n] = bbox(ring);
            return [(w + e) / 2.0, (s + n) / 2.0];
        }
        [cx / (3.0 * a), cy / (3.0 * a)]
    }
}

/// Every country of the shipped shapes.
#[derive(Debug)]
pub struct World {
    /// In the file's order.
    pub countries: Vec<Country>,
    /// Alpha-2 code → index into `countries`.
    by_code: HashMap<&'static str, usize>,
}

impl World {
    /// The country with that alpha-2 code.
    #[must_use]
    pub fn get(&self, code: &str) -> Option<&Country> {
        self.by_code.get(code).map(|&i| &self.countries[i])
    }
}

/// Why the shipped shapes could not be decoded (a broken build, never
/// user input): the map is then left out and the report says so.
#[derive(Debug, thiserror::Error)]
pub enum ShapesError {
    /// Not the TopoJSON this module reads.
    #[error("the shipped country shapes are not readable TopoJSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A ring names an arc the file does not have.
    #[error("the shipped country shapes refer to arc {0}, which they do not have")]
    Arc(i64),
}

/// The shapes, decoded once per process.
///
/// # Errors
/// When the embedded file cannot be decoded.
pub fn world() -> Result<&'static World, &'static ShapesError> {
    // Decoding takes a few milliseconds and a few MB; a daemon serving the
    // live report decodes once and keeps the result.
    static WORLD: OnceLock<Result<World, ShapesError>> = OnceLock::new();
    WORLD.get_or_init(|| decode(TOPOLOGY)).as_ref()
}

#[derive(Deserialize)]
struct Topology {
    transform: Transform,
    objects: Objects,
    arcs: Vec<Vec<[f64; 2]>>,
}

#[derive(Deserialize)]
struct Transform {
    scale: [f64; 2],
    translate: [f64; 2],
}

#[derive(Deserialize)]
struct Objects {
    countries: Collection,
}

#[derive(Deserialize)]
struct Collection {
    geometries: Vec<Geometry>,
}

#[derive(Deserialize)]
struct Properties {
    name: String,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Geometry {
    Polygon {
        arcs: Vec<Vec<i64>>,
        id: Option<String>,
        properties: Properties,
    },
    MultiPolygon {
        arcs: Vec<Vec<Vec<i64>>>,
        id: Option<String>,
        properties: Properties,
    },
}

fn decode(text: &str) -> Result<World, ShapesError> {
    let topology: Topology = serde_json::from_str(text)?;
    let [sx, sy] = topology.transform.scale;
    let [tx, ty] = topology.transform.translate;
    let arcs: Vec<Vec<Point>> = topology
        .arcs
        .iter()
        .map(|arc| {
            let (mut x, mut y) = (0.0, 0.0);
            arc.iter()
                .map(|[dx, dy]| {
                    x += dx;
                    y += dy;
                    [x.mul_add(sx, tx), y.mul_add(sy, ty)]
                })
                .collect()
        })
        .collect();
    let ring = |indices: &[i64]| -> Result<Ring, ShapesError> {
        let mut out: Ring = Vec::new();
        for &i in indices {
            let (index, reversed) = if i < 0 { (!i, true) } else { (i, false) };
            let arc = usize::try_from(index)
                .ok()
                .and_then(|n| arcs.get(n))
                .ok_or(ShapesError::Arc(i))?;
            let points: Box<dyn Iterator<Item = &Point>> = if reversed {
                Box::new(arc.iter().rev())
            } else {
                Box::new(arc.iter())
            };
            // Each arc starts where the previous one ended.
            let skip = usize::from(!out.is_empty());
            out.extend(points.skip(skip).copied());
        }
        Ok(out)
    };
    let mut countries = Vec::new();
    let mut by_code = HashMap::new();
    for geometry in topology.objects.countries.geometries {
        let (polygons, id, properties) = match geometry {
            Geometry::Polygon {
                arcs,
                id,
                properties,
            } => (vec![arcs], id, properties),
            Geometry::MultiPolygon {
                arcs,
                id,
                properties,
            } => (arcs, id, properties),
        };
        let polygons: Vec<Polygon> = polygons
            .iter()
            .map(|rings| rings.iter().map(|r| ring(r)).collect())
            .collect::<Result<_, _>>()?;
        let code = id
            .as_deref()
            .and_then(rust_iso3166::from_numeric_str)
            .map(|c| c.alpha2);
        let all: Vec<Point> = polygons
            .iter()
            .filter_map(|p| p.first())
            .flatten()
            .copied()
            .collect();
        let main = polygons
            .iter()
            .enumerate()
            .max_by(|a, b| area(a.1).total_cmp(&area(b.1)))
            .map_or(0, |(i, _)| i);
        if let Some(code) = code {
            by_code.insert(code, countries.len());
        }
        countries.push(Country {
            code,
            name: properties.name,
            bbox: bbox(&all),
            polygons,
            main,
        });
    }
    Ok(World { countries, by_code })
}

/// West, south, east, north of some points.
#[must_use]
pub fn bbox(points: &[Point]) -> [f64; 4] {
    points.iter().fold(
        [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
        |[w, s, e, n], &[x, y]| [w.min(x), s.min(y), e.max(x), n.max(y)],
    )
}

/// The (planar, degree²) area of a polygon's outer ring.
fn area(polygon: &Polygon) -> f64 {
    polygon.first().map_or(0.0, |ring| {
        ring.windows(2)
            .map(|p| p[0][0] * p[1][1] - p[1][0] * p[0][1])
            .sum::<f64>()
            .abs()
            / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_shipped_file_is_the_packages_file() {
        let digest = Sha256::digest(TOPOLOGY.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "04342cdc1e3016bcd7db1630de95684d67b79fe3c8c460321e87aef469502394"
        );
    }

    #[test]
    fn countries_decode_with_their_codes_and_places() {
        let world = world().unwrap();
        assert_eq!(world.countries.len(), 241);
        let ls = world.get("LS").unwrap();
        assert_eq!(ls.name, "Lesotho");
        // Maseru is at 29.3 S, 27.5 E; Lesotho lies within 28.5-31 S,
        // 27-29.5 E.
        let [lon, lat] = ls.centroid();
        assert!((27.0..29.5).contains(&lon) && (-31.0..-28.5).contains(&lat));
        let [w, s, e, n] = ls.bbox;
        assert!(
            w > 26.9 && e < 29.5 && s > -30.7 && n < -28.5,
            "{:?}",
            ls.bbox
        );
        // South Africa has a hole where Lesotho is, and islands.
        let za = world.get("ZA").unwrap();
        assert!(za.polygons[za.main].len() >= 2, "the hole is kept");
        assert!(za.polygons.len() >= 2);
        assert!(za.main_bbox()[2] - za.main_bbox()[0] < 20.0);
        // Ireland's centroid is inland, west of Dublin.
        let [lon, lat] = world.get("IE").unwrap().centroid();
        assert!((-9.0..-6.3).contains(&lon) && (52.5..54.0).contains(&lat));
        // Rings are closed.
        for c in &world.countries {
            for ring in c.polygons.iter().flatten() {
                assert_eq!(ring.first(), ring.last(), "{}", c.name);
            }
        }
        // A feature without an ISO code is kept, without one.
        assert!(world
            .countries
            .iter()
            .any(|c| c.code.is_none() && c.name == "Kosovo"));
    }

    #[test]
    fn a_ring_naming_a_missing_arc_is_an_error() {
        let text = r#"{"type":"Topology","transform":{"scale":[1,1],"translate":[0,0]},
            "objects":{"countries":{"type":"GeometryCollection","geometries":[
            {"type":"Polygon","arcs":[[3]],"id":"426","properties":{"name":"x"}}]}},
            "arcs":[[[0,0],[1,0],[0,1],[-1,-1]]]}"#;
        assert!(matches!(decode(text), Err(ShapesError::Arc(3))));
        assert!(matches!(decode("{"), Err(ShapesError::Json(_))));
    }
}
