//! Speed-of-light plausibility: can a hop really be where a database says?
//!
//! A reply cannot beat light in fibre. If the vantage point's coordinates are
//! known, a hop whose best round-trip time is shorter than the fibre round
//! trip to its claimed location cannot be there — the database is wrong for
//! that address (often a router numbered from a foreign operator's block).
//! The claimed location's accuracy radius is subtracted from the distance,
//! so only claims that are wrong beyond the database's own error bars fail.

use crate::model::{Coordinates, HopGeo};

/// Mean Earth radius (IUGG), in km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Distance light travels in fibre in one millisecond, in km: two thirds of
/// its vacuum speed of 299,792.458 km/s.
pub const FIBER_KM_PER_MS: f64 = 299_792.458 * 2.0 / 3.0 / 1000.0;

/// Great-circle distance between two points, in km (haversine formula).
#[must_use]
pub fn great_circle_km(a: Coordinates, b: Coordinates) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let half_dlat = (lat2 - lat1) / 2.0;
    let half_dlon = (b.lon - a.lon).to_radians() / 2.0;
    let h = half_dlat.sin().powi(2) + lat1.cos() * lat2.cos() * half_dlon.sin().powi(2);
    // Rounding can push h a hair past 1 for antipodal points.
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// The shortest possible round-trip time, in ms, to a point `distance_km`
/// away through fibre.
#[must_use]
pub fn min_rtt_ms(distance_km: f64) -> f64 {
    2.0 * distance_km.max(0.0) / FIBER_KM_PER_MS
}

/// Whether a hop answering from `vantage` in `best_rtt_ms` can be within
/// `radius_km` of `hop`. `false` only when the round trip is provably too
/// short; a negative radius counts as 0, and inputs that are not numbers
/// prove nothing (the answer is then `true`).
#[must_use]
pub fn plausibility(
    vantage: Coordinates,
    hop: Coordinates,
    radius_km: f64,
    best_rtt_ms: f64,
) -> bool {
    let radius = if radius_km.is_finite() {
        radius_km.max(0.0)
    } else {
        0.0
    };
    let distance = (great_circle_km(vantage, hop) - radius).max(0.0);
    // A NaN anywhere compares as `None`: it proves nothing, so `true`.
    best_rtt_ms.partial_cmp(&min_rtt_ms(distance)) != Some(std::cmp::Ordering::Less)
}

/// The `plausible` value of a located hop: `None` when it cannot be checked
/// (no vantage coordinates, no hop coordinates, no usable round-trip time),
/// otherwise [`plausibility`] with the hop's accuracy radius (0 if none).
#[must_use]
pub fn check_hop(
    vantage: Option<Coordinates>,
    geo: &HopGeo,
    best_rtt_ms: Option<f64>,
) -> Option<bool> {
    let vantage = vantage.filter(|v| valid_coordinates(*v))?;
    let hop = Coordinates {
        lat: geo.lat?,
        lon: geo.lon?,
    };
    if !valid_coordinates(hop) {
        return None;
    }
    let rtt = best_rtt_ms.filter(|r| r.is_finite() && *r >= 0.0)?;
    let radius = geo.accuracy_km.map_or(0.0, f64::from);
    Some(plausibility(vantage, hop, radius, rtt))
}

/// Whether a point is on the globe: finite, latitude within ±90°, longitude
/// within ±180°.
#[must_use]
pub fn valid_coordinates(c: Coordinates) -> bool {
    c.lat.is_finite() && c.lon.is_finite() && c.lat.abs() <= 90.0 && c.lon.abs() <= 180.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASERU: Coordinates = Coordinates {
        lat: -29.31,
        lon: 27.48,
    };
    const DUBLIN: Coordinates = Coordinates {
        lat: 53.35,
        lon: -6.26,
    };
    const JOHANNESBURG: Coordinates = Coordinates {
        lat: -26.2041,
        lon: 28.0473,
    };

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn fibre_speed_is_two_thirds_of_light() {
        assert!(close(FIBER_KM_PER_MS, 199.861_638_7, 1e-6));
    }

    #[test]
    fn distances_match_hand_computed_values() {
        let origin = Coordinates { lat: 0.0, lon: 0.0 };
        // One degree along the equator: 2πR / 360.
        let one_degree = Coordinates { lat: 0.0, lon: 1.0 };
        assert!(close(
            great_circle_km(origin, one_degree),
            111.195_080,
            1e-5
        ));
        // Pole to pole: πR.
        let north = Coordinates {
            lat: 90.0,
            lon: 0.0,
        };
        let south = Coordinates {
            lat: -90.0,
            lon: 0.0,
        };
        assert!(close(great_circle_km(north, south), 20_015.114_442, 1e-5));
        // Antipodes on the equator must not produce NaN.
        let antipode = Coordinates {
            lat: 0.0,
            lon: 180.0,
        };
        assert!(close(
            great_circle_km(origin, antipode),
            20_015.114_442,
            1e-5
        ));
        // Maseru to Dublin, about 9,752 km (law of cosines gives the same).
        assert!(close(great_circle_km(MASERU, DUBLIN), 9_752.101, 0.01));
        assert!(close(great_circle_km(DUBLIN, MASERU), 9_752.101, 0.01));
        assert!(close(great_circle_km(MASERU, JOHANNESBURG), 349.841, 0.01));
        assert_eq!(great_circle_km(MASERU, MASERU), 0.0);
    }

    #[test]
    fn maseru_to_dublin_needs_about_98_ms() {
        let need = min_rtt_ms(great_circle_km(MASERU, DUBLIN));
        assert!(close(need, 97.589, 0.01), "{need}");
        assert!(!plausibility(MASERU, DUBLIN, 0.0, 97.0));
        assert!(plausibility(MASERU, DUBLIN, 0.0, 97.6));
        assert!(plausibility(MASERU, DUBLIN, 0.0, 180.0));
        // A fast reply is plausible at home, and at Johannesburg from 3.5 ms.
        assert!(plausibility(MASERU, MASERU, 0.0, 0.1));
        assert!(!plausibility(MASERU, JOHANNESBURG, 0.0, 3.4));
        assert!(plausibility(MASERU, JOHANNESBURG, 0.0, 3.6));
    }

    #[test]
    fn accuracy_radius_shrinks_the_distance_to_prove() {
        // 349.8 km away with a 300 km radius: at least 49.8 km, 0.498 ms.
        assert!(!plausibility(MASERU, JOHANNESBURG, 300.0, 0.49));
        assert!(plausibility(MASERU, JOHANNESBURG, 300.0, 0.5));
        // A radius larger than the distance proves nothing.
        assert!(plausibility(MASERU, JOHANNESBURG, 1000.0, 0.0));
        // A negative or non-finite radius counts as 0.
        assert!(!plausibility(MASERU, JOHANNESBURG, -50.0, 3.4));
        assert!(!plausibility(MASERU, JOHANNESBURG, f64::NAN, 3.4));
        assert!(plausibility(MASERU, JOHANNESBURG, 0.0, f64::NAN));
    }

    #[test]
    fn check_hop_needs_vantage_coordinates_and_rtt() {
        let geo = HopGeo {
            lat: Some(DUBLIN.lat),
            lon: Some(DUBLIN.lon),
            ..HopGeo::default()
        };
        assert_eq!(check_hop(Some(MASERU), &geo, Some(0.5)), Some(false));
        assert_eq!(check_hop(Some(MASERU), &geo, Some(120.0)), Some(true));
        assert_eq!(check_hop(None, &geo, Some(0.5)), None);
        assert_eq!(check_hop(Some(MASERU), &geo, None), None);
        assert_eq!(check_hop(Some(MASERU), &geo, Some(f64::NAN)), None);
        assert_eq!(check_hop(Some(MASERU), &geo, Some(-1.0)), None);
        assert_eq!(check_hop(Some(MASERU), &HopGeo::default(), Some(0.5)), None);
        let bad_vantage = Coordinates {
            lat: 95.0,
            lon: 0.0,
        };
        assert_eq!(check_hop(Some(bad_vantage), &geo, Some(0.5)), None);
        let wide = HopGeo {
            accuracy_km: Some(10_000),
            ..geo
        };
        assert_eq!(check_hop(Some(MASERU), &wide, Some(0.5)), Some(true));
    }
}
