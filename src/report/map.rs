//! The report's map, as inline SVG: the home country, the foreign
//! countries shaded by how many services depend on them, and the routes
//! the services' paths took last (vantage → transit countries →
//! destination) drawn from country to country. It draws only what the
//! [`Report`] holds (`summary.countries`, `summary.routes`); the shapes
//! come from [`super::shapes`].
//!
//! Readable without colour: the shading is also a hatch whose density
//! grows with the share, each route class has its own dash pattern, every
//! country drawn with a figure carries its name and figure as text, and
//! the routes are listed as a table after the map.

use super::html::esc;
use super::shapes::{self, Country, Point, World};
use super::{class_words, country_name, percent, Report};
use crate::model::VerdictClass;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Widest and tallest the map is drawn, in CSS pixels.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 520.0;

/// Least width of the view over its height.
const LANDSCAPE: f64 = 1.3;

/// Least span of the view, in degrees, so a small country alone still
/// shows its neighbours.
const MIN_SPAN: f64 = 14.0;

/// The shading steps: up to this share of services → fill.
const STEPS: [(f64, &str); 4] = [
    (0.25, "url(#m-dep1)"),
    (0.5, "url(#m-dep2)"),
    (0.75, "url(#m-dep3)"),
    (1.0, "url(#m-dep4)"),
];

const DEFS: &str = r##"<defs>
<pattern id="m-home" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#9cd3f0"/><circle cx="3" cy="3" r="0.9" fill="#1b4f72"/></pattern>
<pattern id="m-dep1" width="8" height="8" patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="#fde2c4"/><path d="M0,8 L8,0" stroke="#7a3b00" stroke-width="0.6"/></pattern>
<pattern id="m-dep2" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#f9b872"/><path d="M0,6 L6,0" stroke="#7a3b00" stroke-width="0.8"/></pattern>
<pattern id="m-dep3" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="#f08a35"/><path d="M0,5 L5,0 M0,0 L5,5" stroke="#5a2a00" stroke-width="0.8"/></pattern>
<pattern id="m-dep4" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#c4500f"/><path d="M0,4 L4,0 M0,0 L4,4" stroke="#2a1000" stroke-width="1"/></pattern>
<marker id="m-end" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="7" markerHeight="7"><circle cx="5" cy="5" r="4" fill="#fff" stroke="#000" stroke-width="1.5"/></marker>
</defs>"##;

/// A route's stroke: colour and dash pattern, told apart without colour.
const fn stroke(class: VerdictClass) -> (&'static str, &'static str) {
    match class {
        VerdictClass::Domestic => ("#1e7a4c", "none"),
        VerdictClass::ForeignTransit => ("#b34700", "8 4"),
        VerdictClass::ForeignDestination => ("#9b1c1c", "2 3"),
        VerdictClass::Indeterminate => ("#555", "1 5"),
    }
}

/// An equirectangular projection of a view, x scaled by the cosine of the
/// view's middle latitude so shapes keep their proportions there.
struct Projection {
    west: f64,
    north: f64,
    kx: f64,
    scale: f64,
    width: f64,
    height: f64,
}

impl Projection {
    fn fit([mut west, south, mut east, north]: [f64; 4]) -> Self {
        let kx = ((south + north) / 2.0).to_radians().cos().max(0.2);
        // A page is wider than tall: a view along a meridian (Lesotho to
        // Ireland) is widened to show the land on either side.
        let h = north - south;
        let short = (LANDSCAPE * h - (east - west) * kx) / kx / 2.0;
        if short > 0.0 {
            west = (west - short).max(-180.0);
            east = (east + short).min(180.0);
        }
        let w = (east - west) * kx;
        let scale = (WIDTH / w).min(HEIGHT / h);
        Self {
            west,
            north,
            kx,
            scale,
            width: (w * scale).round(),
            height: (h * scale).round(),
        }
    }

    fn xy(&self, [lon, lat]: Point) -> (f64, f64) {
        (
            (lon - self.west) * self.kx * self.scale,
            (self.north - lat) * self.scale,
        )
    }
}

/// The view: the main land of every country the map is about, padded, at
/// least [`MIN_SPAN`] wide and tall, within the world.
fn view(countries: &[&Country]) -> [f64; 4] {
    let [mut w, mut s, mut e, mut n] = countries.iter().map(|c| c.main_bbox()).fold(
        [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
        |[w, s, e, n], [a, b, c, d]| [w.min(a), s.min(b), e.max(c), n.max(d)],
    );
    let pad_x = ((e - w) * 0.12).max((MIN_SPAN - (e - w)) / 2.0).max(1.0);
    let pad_y = ((n - s) * 0.12).max((MIN_SPAN - (n - s)) / 2.0).max(1.0);
    w = (w - pad_x).max(-180.0);
    e = (e + pad_x).min(180.0);
    s = (s - pad_y).max(-85.0);
    n = (n + pad_y).min(85.0);
    [w, s, e, n]
}

/// Whether two boxes overlap.
fn overlaps(a: [f64; 4], b: [f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

/// A country's outline within the view as SVG path data, points closer
/// than a tenth of a pixel dropped. Polygons outside the view are left
/// out, and so are the few that wrap around the antimeridian (Fiji,
/// Kiribati): drawn flat, they would cross the whole map.
fn outline(country: &Country, p: &Projection, view: [f64; 4]) -> String {
    let mut d = String::new();
    let shown = country.polygons.iter().filter(|polygon| {
        polygon.first().is_some_and(|outer| {
            let b = shapes::bbox(outer);
            b[2] - b[0] < 180.0 && overlaps(b, view)
        })
    });
    for ring in shown.flatten() {
        let mut last = (f64::NAN, f64::NAN);
        for (i, point) in ring.iter().enumerate() {
            let (x, y) = p.xy(*point);
            let (x, y) = ((x * 10.0).round() / 10.0, (y * 10.0).round() / 10.0);
            if (x, y) == last {
                continue;
            }
            let _ = write!(d, "{}{x},{y}", if i == 0 { 'M' } else { 'L' });
            last = (x, y);
        }
        d.push('Z');
    }
    d
}

/// Write the map section of `report`.
pub fn write(o: &mut String, report: &Report) {
    let _ = writeln!(o, "<h2 id=\"map\">Map</h2>");
    let world = match shapes::world() {
        Ok(world) => world,
        Err(e) => {
            let _ = writeln!(o, "<p>The map is left out: {}.</p>", esc(&e.to_string()));
            return;
        }
    };
    let routes = &report.summary.routes;
    let home = report
        .method
        .home
        .clone()
        .or_else(|| routes.iter().find_map(|r| r.countries.first().cloned()));
    let shares: BTreeMap<&str, f64> = report
        .summary
        .countries
        .iter()
        .map(|c| (c.country.as_str(), c.share_of_services))
        .collect();
    let mut involved: BTreeSet<&str> = shares.keys().copied().collect();
    involved.extend(
        routes
            .iter()
            .flat_map(|r| r.countries.iter().map(String::as_str)),
    );
    involved.extend(home.as_deref());
    let drawn: Vec<&Country> = involved.iter().filter_map(|c| world.get(c)).collect();
    if drawn.is_empty() {
        let _ = writeln!(
            o,
            "<p>No located country to draw: no service was traced to a known country in the period.</p>"
        );
        return;
    }
    let box_ = view(&drawn);
    let p = Projection::fit(box_);
    let unknown: Vec<&str> = involved
        .iter()
        .filter(|c| world.get(c).is_none())
        .copied()
        .collect();
    let desc = description(report, home.as_deref());
    let _ = writeln!(
        o,
        "<figure class=\"map\"><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"map-title map-desc\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><title id=\"map-title\">Where the services' paths go</title><desc id=\"map-desc\">{}</desc>{DEFS}<rect width=\"{w}\" height=\"{h}\" fill=\"#f4f8fb\"/>",
        esc(&desc),
        w = p.width,
        h = p.height
    );
    countries(o, world, &p, box_, home.as_deref(), &shares);
    routes_drawn(o, world, &p, report);
    labels(o, world, &p, home.as_deref(), report);
    let _ = writeln!(o, "</svg><figcaption>Countries: dotted blue the home country; foreign countries hatched, denser and darker the larger their share of services; the numbers refer to the legend (the figures are also in the table \"Countries depended on\"). Routes, from the vantage point through each country to the destination (ringed): solid domestic, dashed foreign transit, dotted foreign destination, sparse dots indeterminate; thicker lines carry more services. Country shapes: Natural Earth.{}</figcaption></figure>",
        if unknown.is_empty() {
            String::new()
        } else {
            format!(" Not drawn (no shape): {}.", esc(&unknown.join(", ")))
        });
    route_table(o, report);
}

/// The map in words, for the SVG's `<desc>`.
fn description(report: &Report, home: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(h) = home {
        parts.push(format!("Home country: {}.", country_name(h)));
    }
    for c in &report.summary.countries {
        parts.push(format!(
            "{}: {} of {} services ({}).",
            c.name,
            c.services_any,
            report.summary.services,
            percent(c.share_of_services)
        ));
    }
    for r in &report.summary.routes {
        parts.push(format!(
            "Route {} ({}): {}.",
            route_names(&r.countries),
            class_words(r.class),
            r.service_names.join(", ")
        ));
    }
    parts.join(" ")
}

fn route_names(countries: &[String]) -> String {
    countries
        .iter()
        .map(|c| country_name(c))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Every country in view: home, shaded foreign ones, the rest as land.
fn countries(
    o: &mut String,
    world: &World,
    p: &Projection,
    box_: [f64; 4],
    home: Option<&str>,
    shares: &BTreeMap<&str, f64>,
) {
    for c in world.countries.iter().filter(|c| overlaps(c.bbox, box_)) {
        let code = c.code.unwrap_or("");
        let fill = if Some(code) == home && !code.is_empty() {
            "url(#m-home)"
        } else if let Some(share) = shares.get(code) {
            STEPS
                .iter()
                .find(|(up_to, _)| share <= up_to)
                .map_or(STEPS[3].1, |(_, fill)| fill)
        } else {
            "#e3e3e3"
        };
        let _ = writeln!(
            o,
            "<path data-country=\"{}\" d=\"{}\" fill=\"{fill}\" fill-rule=\"evenodd\" stroke=\"#666\" stroke-width=\"0.5\"><title>{}</title></path>",
            esc(code),
            outline(c, p, box_),
            esc(&c.name)
        );
    }
}

/// The routes, from centroid to centroid, bent a little so that a route
/// there and back (`LS ZA LS`) shows both ways.
fn routes_drawn(o: &mut String, world: &World, p: &Projection, report: &Report) {
    for (i, r) in report.summary.routes.iter().enumerate() {
        let points: Vec<(f64, f64)> = r
            .countries
            .iter()
            .filter_map(|c| world.get(c))
            .map(|c| p.xy(c.centroid()))
            .collect();
        let (colour, dash) = stroke(r.class);
        #[allow(clippy::cast_precision_loss)] // a handful of services
        let width = 1.5 + (r.service_names.len() as f64).min(6.0);
        let title = format!(
            "{}: {} ({})",
            r.service_names.join(", "),
            route_names(&r.countries),
            class_words(r.class)
        );
        if points.len() < 2 {
            if let Some((x, y)) = points.first() {
                let _ = writeln!(o, "<circle data-route=\"{i}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"#fff\" stroke=\"{colour}\" stroke-width=\"2\"><title>{}</title></circle>", esc(&title));
            }
            continue;
        }
        let mut d = format!("M{:.1},{:.1}", points[0].0, points[0].1);
        #[allow(clippy::cast_precision_loss)]
        let bend = 0.18 + 0.05 * (i % 3) as f64;
        for pair in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            // The control point sits off the middle, to the left of the
            // direction of travel: the way back bends the other way.
            // A short leg (neighbouring countries) still bends by a few
            // pixels, so that a route there and back shows as a loop.
            let (mx, my) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
            let (dx, dy) = (x1 - x0, y1 - y0);
            let length = dx.hypot(dy).max(f64::EPSILON);
            let k = (length * bend).max(18.0) / length;
            let (cx, cy) = (mx + dy * k, my - dx * k);
            let _ = write!(d, " Q{cx:.1},{cy:.1} {x1:.1},{y1:.1}");
        }
        let _ = writeln!(o, "<path data-route=\"{i}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width:.1}\" stroke-dasharray=\"{dash}\" stroke-linecap=\"round\" marker-end=\"url(#m-end)\" opacity=\"0.9\"><title>{}</title></path>", esc(&title));
    }
}

/// Names and figures of the countries the map is about: a numbered badge
/// on each (moved aside when it would cover another) and a legend in the
/// corner with the number, the name and the figure, so that neighbouring
/// small countries (Lesotho inside South Africa) never hide each other's
/// text.
fn labels(o: &mut String, world: &World, p: &Projection, home: Option<&str>, report: &Report) {
    let n = report.summary.services;
    let mut entries: Vec<(&str, String)> = Vec::new();
    if let Some(h) = home {
        entries.push((h, format!("{} (home)", country_name(h))));
    }
    for c in &report.summary.countries {
        entries.push((
            &c.country,
            format!(
                "{}: {} of {n} services ({})",
                c.name,
                c.services_any,
                percent(c.share_of_services)
            ),
        ));
    }
    let entries: Vec<(&Country, String)> = entries
        .into_iter()
        .filter_map(|(code, text)| world.get(code).map(|c| (c, text)))
        .collect();
    let mut placed: Vec<(f64, f64)> = Vec::new();
    for (i, (country, _)) in entries.iter().enumerate() {
        let (mut x, y) = p.xy(country.centroid());
        while placed
            .iter()
            .any(|&(px, py)| (px - x).abs() < 16.0 && (py - y).abs() < 16.0)
        {
            x += 16.0;
        }
        placed.push((x, y));
        let _ = writeln!(o, "<g class=\"badge\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"8\" fill=\"#fff\" stroke=\"#000\" stroke-width=\"1\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" font-family=\"system-ui,sans-serif\">{}</text></g>", y + 4.0, i + 1);
    }
    #[allow(clippy::cast_precision_loss)] // a few lines
    let height = 18.0 * entries.len() as f64 + 8.0;
    let width = entries
        .iter()
        .map(|(_, t)| t.chars().count())
        .max()
        .unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let width = 34.0 + 6.6 * width as f64;
    let top = p.height - height - 6.0;
    let _ = writeln!(o, "<g class=\"legend\"><rect x=\"6\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" fill=\"#fff\" fill-opacity=\"0.92\" stroke=\"#666\" stroke-width=\"0.5\"/>");
    for (i, (_, text)) in entries.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let y = top + 18.0 * i as f64 + 17.0;
        let _ = writeln!(o, "<text x=\"14\" y=\"{y:.1}\" font-size=\"12\" font-family=\"system-ui,sans-serif\"><tspan font-weight=\"bold\">{}</tspan> {}</text>", i + 1, esc(text));
    }
    let _ = writeln!(o, "</g>");
}

/// The routes as a table: the map's text alternative.
fn route_table(o: &mut String, report: &Report) {
    if report.summary.routes.is_empty() {
        return;
    }
    let _ = writeln!(o, "<table id=\"routes\"><caption>The map as text: routes the services' paths took last</caption><thead><tr><th>countries, in path order</th><th>class</th><th>services</th></tr></thead><tbody>");
    for r in &report.summary.routes {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&route_names(&r.countries)),
            class_words(r.class),
            esc(&r.service_names.join(", "))
        );
    }
    let _ = writeln!(o, "</tbody></table>");
}
